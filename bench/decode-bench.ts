/**
 * DF11 GPU decode benchmark: one unit of N(0, 0.02) BF16 weights (default 14336 x 4096, the shape of
 * the official CUDA anchor in ../shared/ANCHORS.md), decoded repeatedly; plus the same device's WebGPU
 * copy bandwidth (shader copy and copyBufferToBuffer) so the decode can be read as a ratio.
 * Prints one JSON line per result.
 *
 *   npx tsx bench/decode-bench.ts --rows 512 --copy-mib 64        # smoke test (SwiftShader here)
 *   node bench/build.mjs && bash .gpu/run node dist-bench/decode-bench.mjs   # on the GPU machine
 *
 * Options: --rows R --cols C (matrix shape), --iters N (timed repetitions, >= 20), --batch B (decodes
 * per submit), --wg 256,512 (workgroup sizes to try; those the device allows), --copy-mib M.
 * Timing: wall clock around submit + onSubmittedWorkDone over a batch, divided by the batch (the
 * summary uses it); with timestamp-query also the GPU time of one pass (gpu_* fields; browsers and
 * Dawn may quantize timestamps, so read them as a cross-check). GB/s counts BF16 output bytes (2 per weight).
 */
import { parseArgs } from 'node:util';
import { encodeUnit } from '../src/format/df11-encoder.ts';
import type { Df11Unit } from '../src/format/df11-types.ts';
import { bf16PairBytes, Df11Decoder } from '../src/gpu/df11-decode.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { normalBf16 } from '../src/testing/random-weights.ts';
import { emit, median, sig } from './report.ts';
import { benchShaders } from './shaders.ts';

/** Official DFloat11 CUDA kernel on one H200, 14336 x 4096 (ANCHORS.md). */
const CUDA_ANCHOR_GBPS = 504;
const WARMUP = 3;

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '14336' },
    cols: { type: 'string', default: '4096' },
    iters: { type: 'string', default: '20' },
    batch: { type: 'string', default: '20' },
    wg: { type: 'string', default: '256,512' },
    'copy-mib': { type: 'string', default: '1024' },
  },
});
const rows = Number(values.rows);
const cols = Number(values.cols);
const iters = Math.max(20, Number(values.iters));
const batch = Math.max(1, Number(values.batch));

/** Median ms per call of `record` over `iters` submits of `perSubmit` calls (after warmup). */
async function wallClock(gpu: Gpu, perSubmit: number, record: (encoder: GPUCommandEncoder) => void): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < WARMUP + iters; i++) {
    const encoder = gpu.device.createCommandEncoder();
    for (let j = 0; j < perSubmit; j++) record(encoder);
    const t0 = performance.now();
    gpu.device.queue.submit([encoder.finish()]);
    await gpu.device.queue.onSubmittedWorkDone();
    if (i >= WARMUP) times.push((performance.now() - t0) / perSubmit);
  }
  return median(times);
}

/** Median GPU ms of one pass recorded by `record`, from timestamp queries (null without the feature). */
async function gpuTime(gpu: Gpu, record: (pass: GPUComputePassEncoder) => void): Promise<number | null> {
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
  gpu.device.queue.submit([encoder.finish()]);
  const stamps = new BigUint64Array(await gpu.read(resolve));
  querySet.destroy();
  resolve.destroy();
  const ms: number[] = [];
  for (let i = 0; i < iters; i++) ms.push(Number(stamps[2 * i + 1] - stamps[2 * i]) / 1e6);
  return median(ms);
}

async function benchDecode(gpu: Gpu, workgroupSize: number, source: Df11Unit, original: Uint16Array): Promise<number> {
  const decoder = await Df11Decoder.create(gpu, { workgroupSize });
  const n = original.length;
  const out = await gpu.createBuffer({ label: 'bench out', size: bf16PairBytes(n), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const unit = await decoder.upload(source);
  const ms = await wallClock(gpu, batch, (enc) => decoder.encodeMatrix(enc, unit, 0, out));
  const gpuMs = await gpuTime(gpu, (pass) => decoder.encodeMatrix(pass, unit, 0, out));
  await decoder.checkStatus();
  const got = new Uint16Array(await gpu.read(out), 0, n);
  let correct = true;
  for (let i = 0; i < n && correct; i++) correct = got[i] === original[i];
  const gbps = (n * 2) / (ms * 1e6);
  const compressedBytes = source.encodedExponent.length + source.signMantissa.length + source.gaps.length
    + source.luts.length + source.outputPositions.byteLength;
  const result: Record<string, unknown> = {
    bench: 'df11-decode',
    device: deviceName(gpu),
    rows, cols, elements: n, compressed_bytes: compressedBytes, ratio: sig(compressedBytes / (2 * n)),
    workgroup_size: workgroupSize, iters, batch,
    median_ms: sig(ms), gbps: sig(gbps), vs_cuda_504: sig(gbps / CUDA_ANCHOR_GBPS),
    correct,
  };
  if (gpuMs !== null) {
    result.gpu_median_ms = sig(gpuMs);
    result.gpu_gbps = sig((n * 2) / (gpuMs * 1e6));
  }
  emit(result);
  out.destroy();
  unit.destroy();
  decoder.destroy();
  return gbps;
}

/** Read+write bytes per second of a shader copy and of copyBufferToBuffer. */
async function benchCopy(gpu: Gpu): Promise<number> {
  const bytes = Math.floor(Math.min(Number(values['copy-mib']) * 2 ** 20, gpu.maxBindingSize) / 2 ** 20) * 2 ** 20;
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
  const shaderMs = await wallClock(gpu, 1, (enc) => {
    const pass = enc.beginComputePass();
    shaderPass(pass);
    pass.end();
  });
  const shaderGpuMs = await gpuTime(gpu, shaderPass);
  const copyMs = await wallClock(gpu, 1, (enc) => enc.copyBufferToBuffer(src, 0, dst, 0, bytes));
  const rw = (ms: number) => sig((2 * bytes) / (ms * 1e6));
  const shader: Record<string, unknown> = { bench: 'webgpu-copy', device: deviceName(gpu), method: 'shader', bytes, median_ms: sig(shaderMs), gbps_rw: rw(shaderMs) };
  if (shaderGpuMs !== null) Object.assign(shader, { gpu_median_ms: sig(shaderGpuMs), gpu_gbps_rw: rw(shaderGpuMs) });
  emit(shader);
  emit({ bench: 'webgpu-copy', device: deviceName(gpu), method: 'copyBufferToBuffer', bytes, median_ms: sig(copyMs), gbps_rw: rw(copyMs) });
  src.destroy();
  dst.destroy();
  return rw(shaderMs);
}

function deviceName(gpu: Gpu): string {
  const i = gpu.adapterInfo;
  return [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ');
}

const original = normalBf16(rows * cols, 2024);
const source = encodeUnit('bench', [{ name: 'weight', shape: [rows, cols], bits: original }]);
const gpu = await createNodeGpu({ shaders: benchShaders });
const sizes = values.wg.split(',').map(Number).filter((s) => s <= gpu.limits.maxComputeInvocationsPerWorkgroup);
let best = 0;
for (const wg of sizes) best = Math.max(best, await benchDecode(gpu, wg, source, original));
const copy = await benchCopy(gpu);
emit({ bench: 'df11-decode-summary', device: deviceName(gpu), elements: rows * cols, decode_gbps: sig(best), shader_copy_gbps_rw: sig(copy), decode_vs_shader_copy_rw: sig(best / copy), vs_cuda_504: sig(best / CUDA_ANCHOR_GBPS) });
gpu.destroy();
