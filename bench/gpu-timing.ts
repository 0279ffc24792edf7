// GPU timing shared by the benchmarks: wall clock over submits, timestamp-query pass times, and the
// device's WebGPU copy bandwidth (shader copy and copyBufferToBuffer) that bandwidth figures are read against.
import type { Gpu } from '../src/gpu/gpu.ts';
import { emit, median, reportTo, sig } from './report.ts';

const WARMUP = 3;

/**
 * Dawn instance flags of the Node benchmarks (createNodeGpu): timestamps unquantized, so that GPU times of
 * single dispatches (tens of µs) are measurable (quantized, the H200's read in steps of 131 µs).
 */
export const BENCH_DAWN_FLAGS = ['disable-dawn-features=timestamp_quantization'];

/**
 * Keep the GPU busy with submits of `perSubmit` calls of `record` for `ms` milliseconds: an idle GPU runs its
 * first fraction of a second slowly (the H200 read 2-3x slow in the first decode line of a process), so
 * lines measured right after a process starts warm up first.
 */
export async function keepBusy(gpu: Gpu, ms: number, perSubmit: number, record: (encoder: GPUCommandEncoder) => void): Promise<void> {
  const until = performance.now() + ms;
  while (performance.now() < until) await submitTimed(gpu, perSubmit, record);
}

/** Wall-clock ms of one submit of `perSubmit` calls of `record`, until the queue has done it. */
async function submitTimed(gpu: Gpu, perSubmit: number, record: (encoder: GPUCommandEncoder) => void): Promise<number> {
  const encoder = gpu.device.createCommandEncoder();
  for (let j = 0; j < perSubmit; j++) record(encoder);
  const t0 = performance.now();
  gpu.submit([encoder.finish()]);
  await gpu.device.queue.onSubmittedWorkDone();
  return performance.now() - t0;
}

/** Median ms per call of `record` over `iters` submits of `perSubmit` calls (after warmup). */
export async function wallClock(gpu: Gpu, iters: number, perSubmit: number, record: (encoder: GPUCommandEncoder) => void): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < WARMUP + iters; i++) {
    const ms = await submitTimed(gpu, perSubmit, record);
    if (i >= WARMUP) times.push(ms / perSubmit);
  }
  return median(times);
}

/** Median GPU ms of one pass recorded by `record`, from timestamp queries (null without the feature). */
export async function gpuTime(gpu: Gpu, iters: number, record: (pass: GPUComputePassEncoder) => void): Promise<number | null> {
  if (!gpu.features.timestampQuery) return null;
  const querySet = gpu.device.createQuerySet({ type: 'timestamp', count: 2 * iters });
  const resolve = await gpu.createBuffer({ size: 16 * iters, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const encoder = gpu.device.createCommandEncoder();
  for (let i = 0; i < iters; i++) {
    const pass = encoder.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
    record(pass);
    pass.end();
  }
  encoder.resolveQuerySet(querySet, 0, 2 * iters, resolve, 0);
  gpu.submit([encoder.finish()]);
  const stamps = new BigUint64Array(await gpu.read(resolve));
  querySet.destroy();
  resolve.destroy();
  const ms: number[] = [];
  for (let i = 0; i < iters; i++) ms.push(Number(stamps[2 * i + 1] - stamps[2 * i]) / 1e6);
  return median(ms);
}

/**
 * Read+write bytes per second (GB/s) of a shader copy of `mib` MiB (capped by the binding size), emitted
 * as JSON lines together with copyBufferToBuffer's; returns the shader copy's figure.
 */
export async function benchCopy(gpu: Gpu, mib: number, iters: number): Promise<number> {
  const bytes = Math.floor(Math.min(mib * 2 ** 20, gpu.maxBindingSize) / 2 ** 20) * 2 ** 20;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const src = await gpu.createBuffer({ label: 'copy src', size: bytes, usage });
  const dst = await gpu.createBuffer({ label: 'copy dst', size: bytes, usage });
  const pipeline = await gpu.computePipeline('bench_copy');
  const group = gpu.device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: dst } }],
  });
  const groups = Math.min(gpu.limits.maxComputeWorkgroupsPerDimension, Math.ceil(bytes / 16 / 256));
  const shaderPass = (pass: GPUComputePassEncoder) => {
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(groups);
  };
  const shaderMs = await wallClock(gpu, iters, 1, (enc) => {
    const pass = enc.beginComputePass();
    shaderPass(pass);
    pass.end();
  });
  const shaderGpuMs = await gpuTime(gpu, iters, shaderPass);
  const copyMs = await wallClock(gpu, iters, 1, (enc) => enc.copyBufferToBuffer(src, 0, dst, 0, bytes));
  const rw = (ms: number) => sig((2 * bytes) / (ms * 1e6));
  const shader: Record<string, unknown> = { bench: 'webgpu-copy', device: deviceName(gpu), method: 'shader', bytes, median_ms: sig(shaderMs), gbps_rw: rw(shaderMs) };
  if (shaderGpuMs !== null) Object.assign(shader, { gpu_median_ms: sig(shaderGpuMs), gpu_gbps_rw: rw(shaderGpuMs) });
  emit(shader);
  emit({ bench: 'webgpu-copy', device: deviceName(gpu), method: 'copyBufferToBuffer', bytes, median_ms: sig(copyMs), gbps_rw: rw(copyMs) });
  src.destroy();
  dst.destroy();
  return rw(shaderMs);
}

export function deviceName(gpu: Gpu): string {
  const i = gpu.adapterInfo;
  return [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ');
}

/** Where a benchmark runs: Node (Dawn) or a browser page (bench.html). */
export type BenchRuntime = 'node' | 'chromium' | 'browser';

/** Every following JSON line carries `runtime`, the adapter's info and `extra`; lines go to `sink` (default stdout). */
export function reportFrom(gpu: Gpu, runtime: BenchRuntime, sink?: (line: string) => void, extra: Record<string, unknown> = {}): void {
  const { vendor, architecture, device, description } = gpu.adapterInfo;
  reportTo({ runtime, adapter_info: { vendor, architecture, device, description }, ...extra }, sink);
}
