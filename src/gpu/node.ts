import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Df11Error, isDf11Error } from '../errors.ts';
import { Gpu, isCpuAdapter, type GpuOptions, type ShaderSources } from './gpu.ts';

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
    const created = await Gpu.create({ shaders: options.shaders ?? nodeShaders(), ...options, gpu });
    if (isCpuAdapter(created.adapterInfo)) pollDawnByTimer();
    return created;
  } catch (e) {
    if (!isDf11Error(e, 'no-webgpu')) throw e;
    throw new Df11Error('no-webgpu', `${e.message} ${NODE_WEBGPU_HINT}`, { cause: e });
  }
}

/**
 * Dawn's Node binding waits for GPU work (mapAsync, createComputePipelineAsync, device loss) by calling
 * `globalThis.setImmediate` again and again while any is pending: a busy loop that holds one core and
 * churns the garbage collector. On a CPU adapter (SwiftShader) that core is one the rasterizer's threads
 * need: a stories-15m BF16 decode step took 0.29 s spinning and 0.17 s polled once a millisecond (2 cores).
 * So once a CPU adapter is in use, the binding's callbacks (anonymous native functions; JavaScript
 * callbacks are left alone) go through setTimeout(0), at most 1 ms late. GPU adapters keep the busy loop:
 * there a step is a millisecond or two and the latency would show.
 */
function pollDawnByTimer(): void {
  const immediate = globalThis.setImmediate as typeof setImmediate & { [DAWN_POLL_BY_TIMER]?: true };
  if (immediate[DAWN_POLL_BY_TIMER]) return;
  const wrapped = Object.assign(
    function setImmediate<A extends unknown[]>(callback: (...args: A) => void, ...args: A): NodeJS.Immediate {
      if (callback.name === '' && Function.prototype.toString.call(callback).includes('[native code]')) {
        return setTimeout(callback, 0, ...args) as unknown as NodeJS.Immediate;
      }
      return immediate(callback, ...args);
    },
    immediate, // util.promisify.custom and the rest
    { [DAWN_POLL_BY_TIMER]: true as const },
  );
  globalThis.setImmediate = wrapped as typeof setImmediate;
}

const DAWN_POLL_BY_TIMER = Symbol.for('df11.dawnPollByTimer');

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
