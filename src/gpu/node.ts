import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Df11Error, isDf11Error } from '../errors.ts';
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
 * machine exposes no GPU, uses SwiftShader from Debian's chromium package. `dawnFlags`: Dawn instance
 * flags (benchmarks turn timestamp quantization off: 'disable-dawn-features=timestamp_quantization').
 */
export async function createNodeGpu(options: Partial<GpuOptions> = {}, dawnFlags: string[] = []): Promise<Gpu> {
  if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && !hasGpuDevice() && existsSync(SWIFTSHADER_ICD)) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  const gpu = create(dawnFlags) as GPU;
  liveInstances.push(gpu);
  try {
    return await Gpu.create({ shaders: options.shaders ?? nodeShaders(), ...options, gpu });
  } catch (e) {
    if (!isDf11Error(e, 'no-webgpu')) throw e;
    throw new Df11Error('no-webgpu', `${e.message} ${NODE_WEBGPU_HINT}`, { cause: e });
  }
}

/** What a Debian/Ubuntu machine needs for WebGPU in Node (scripts/setup.sh installs it). */
const NODE_WEBGPU_HINT =
  'Node WebGPU (Dawn) needs the Vulkan loader and a Vulkan driver: a GPU driver, or SwiftShader from ' +
  'Debian\'s chromium package on machines without a GPU. Install them with ' +
  '`sudo apt-get install -y libvulkan1 chromium` (or run `npm run setup`).';

/** A GPU the kernel exposes (DRM render node or the NVIDIA device); without one Vulkan would find only CPU drivers. */
function hasGpuDevice(): boolean {
  if (existsSync('/dev/nvidia0')) return true;
  return existsSync('/dev/dri') && readdirSync('/dev/dri').some((f) => f.startsWith('renderD'));
}
