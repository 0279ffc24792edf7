/**
 * The DF11 GPU decode benchmark's measuring core, shared by bench/decode-bench.ts (Node) and the bench
 * page (bench.html): one unit of N(0, 0.02) BF16 weights (default 14336 x 4096, the shape of the official
 * CUDA anchor in ../shared/ANCHORS.md), decoded repeatedly; plus the same device's WebGPU copy bandwidth
 * (shader copy and copyBufferToBuffer) so the decode can be read as a ratio. One JSON line per result.
 *
 * Options: rows, cols (matrix shape), iters (timed repetitions, >= 20), batch (decodes per submit),
 * wg 256,512 (workgroup sizes to try; those the device allows), copy-mib.
 * Timing: wall clock around submit + onSubmittedWorkDone over a batch, divided by the batch (the
 * summary uses it); with timestamp-query also the GPU time of one pass (gpu_* fields; browsers and
 * Dawn may quantize timestamps, so read them as a cross-check). GB/s counts BF16 output bytes (2 per weight).
 */
import { encodeUnit } from '../src/format/df11-encoder.ts';
import type { Df11Unit } from '../src/format/df11-types.ts';
import { bf16PairBytes, Df11Decoder } from '../src/gpu/df11-decode.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { normalBf16 } from '../src/testing/random-weights.ts';
import { benchCopy, deviceName, gpuTime, wallClock } from './gpu-timing.ts';
import { stringOption, type OptionSpec, type OptionValues } from './options.ts';
import { emit, sig } from './report.ts';

/** Official DFloat11 CUDA kernel on one H200, 14336 x 4096 (ANCHORS.md). */
const CUDA_ANCHOR_GBPS = 504;

export const DECODE_OPTIONS = {
  rows: { type: 'string', default: '14336' },
  cols: { type: 'string', default: '4096' },
  iters: { type: 'string', default: '20' },
  batch: { type: 'string', default: '20' },
  wg: { type: 'string', default: '256,512' },
  'copy-mib': { type: 'string', default: '1024' },
} as const satisfies OptionSpec;

interface DecodeConfig {
  rows: number;
  cols: number;
  iters: number;
  batch: number;
}

async function benchDecode(gpu: Gpu, c: DecodeConfig, workgroupSize: number, source: Df11Unit, original: Uint16Array): Promise<number> {
  const decoder = await Df11Decoder.create(gpu, { workgroupSize });
  const n = original.length;
  const out = await gpu.createBuffer({ label: 'bench out', size: bf16PairBytes(n), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const unit = await decoder.upload(source);
  const ms = await wallClock(gpu, c.iters, c.batch, (enc) => decoder.encodeMatrix(enc, unit, 0, out));
  const gpuMs = await gpuTime(gpu, c.iters, (pass) => decoder.encodeMatrix(pass, unit, 0, out));
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
    rows: c.rows, cols: c.cols, elements: n, compressed_bytes: compressedBytes, ratio: sig(compressedBytes / (2 * n)),
    workgroup_size: workgroupSize, iters: c.iters, batch: c.batch,
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

/** Runs the decode benchmark on `gpu` with `values` of DECODE_OPTIONS; emits its JSON lines. */
export async function runDecodeBench(gpu: Gpu, values: OptionValues): Promise<void> {
  const num = (name: keyof typeof DECODE_OPTIONS): number => Number(stringOption(values, name, DECODE_OPTIONS[name].default));
  const c: DecodeConfig = { rows: num('rows'), cols: num('cols'), iters: Math.max(20, num('iters')), batch: Math.max(1, num('batch')) };
  const original = normalBf16(c.rows * c.cols, 2024);
  const source = encodeUnit('bench', [{ name: 'weight', shape: [c.rows, c.cols], bits: original }]);
  const wg = stringOption(values, 'wg', DECODE_OPTIONS.wg.default)!;
  const sizes = wg.split(',').map(Number).filter((s) => s <= gpu.limits.maxComputeInvocationsPerWorkgroup);
  let best = 0;
  for (const size of sizes) best = Math.max(best, await benchDecode(gpu, c, size, source, original));
  const copy = await benchCopy(gpu, num('copy-mib'), c.iters);
  emit({ bench: 'df11-decode-summary', device: deviceName(gpu), elements: c.rows * c.cols, decode_gbps: sig(best), shader_copy_gbps_rw: sig(copy), decode_vs_shader_copy_rw: sig(best / copy), vs_cuda_504: sig(best / CUDA_ANCHOR_GBPS) });
}
