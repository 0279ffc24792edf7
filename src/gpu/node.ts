import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gpu, type GpuOptions, type ShaderSources } from './gpu.ts';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const SHADER_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../shaders');

/** shaders/*.wgsl read from disk (Node has no bundler to inline them). */
export function nodeShaders(dir = SHADER_DIR): ShaderSources {
  return new Map(
    readdirSync(dir)
      .filter((f) => f.endsWith('.wgsl'))
      .map((f) => [f.slice(0, -5), readFileSync(join(dir, f), 'utf8')]),
  );
}

/**
 * Dawn instances created here, kept referenced for the life of the process: if one is garbage-collected
 * while its device lives, async work (createComputePipelineAsync, mapAsync) crashes the process.
 */
const liveInstances: GPU[] = [];

/**
 * A Gpu in Node through the `webgpu` package (Dawn). When the caller chose no Vulkan driver and the
 * machine exposes no GPU, uses SwiftShader from Debian's chromium package.
 */
export async function createNodeGpu(options: Partial<GpuOptions> = {}): Promise<Gpu> {
  if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && !hasGpuDevice() && existsSync(SWIFTSHADER_ICD)) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  const gpu = create([]) as GPU;
  liveInstances.push(gpu);
  return Gpu.create({ shaders: options.shaders ?? nodeShaders(), ...options, gpu });
}

/** A GPU the kernel exposes (DRM render node or the NVIDIA device); without one Vulkan would find only CPU drivers. */
function hasGpuDevice(): boolean {
  if (existsSync('/dev/nvidia0')) return true;
  return existsSync('/dev/dri') && readdirSync('/dev/dri').some((f) => f.startsWith('renderD'));
}
