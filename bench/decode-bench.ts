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
import { benchCopy, deviceName, gpuTime, wallClock } from './gpu-timing.ts';
import { emit, sig } from './report.ts';
import { benchShaders } from './shaders.ts';

/** Official DFloat11 CUDA kernel on one H200, 14336 x 4096 (ANCHORS.md). */
const CUDA_ANCHOR_GBPS = 504;

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

async function benchDecode(gpu: Gpu, workgroupSize: number, source: Df11Unit, original: Uint16Array): Promise<number> {
  const decoder = await Df11Decoder.create(gpu, { workgroupSize });
  const n = original.length;
  const out = await gpu.createBuffer({ label: 'bench out', size: bf16PairBytes(n), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const unit = await decoder.upload(source);
  const ms = await wallClock(gpu, iters, batch, (enc) => decoder.encodeMatrix(enc, unit, 0, out));
  const gpuMs = await gpuTime(gpu, iters, (pass) => decoder.encodeMatrix(pass, unit, 0, out));
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

const original = normalBf16(rows * cols, 2024);
const source = encodeUnit('bench', [{ name: 'weight', shape: [rows, cols], bits: original }]);
const gpu = await createNodeGpu({ shaders: benchShaders });
const sizes = values.wg.split(',').map(Number).filter((s) => s <= gpu.limits.maxComputeInvocationsPerWorkgroup);
let best = 0;
for (const wg of sizes) best = Math.max(best, await benchDecode(gpu, wg, source, original));
const copy = await benchCopy(gpu, Number(values['copy-mib']), iters);
emit({ bench: 'df11-decode-summary', device: deviceName(gpu), elements: rows * cols, decode_gbps: sig(best), shader_copy_gbps_rw: sig(copy), decode_vs_shader_copy_rw: sig(best / copy), vs_cuda_504: sig(best / CUDA_ANCHOR_GBPS) });
gpu.destroy();
