/**
 * The DF11 GPU decode benchmark's measuring core, shared by bench/decode-bench.ts (Node) and the bench
 * page (bench.html): one unit of N(0, 0.02) BF16 weights (default 14336 x 4096, the shape of the official
 * CUDA anchor in ../shared/ANCHORS.md), decoded repeatedly; plus the same device's WebGPU copy bandwidth
 * (shader copy and copyBufferToBuffer) so the decode can be read as a ratio. One JSON line per result.
 *
 * Options: rows, cols (matrix shape), iters (timed repetitions, >= 20), batch (decodes per submit),
 * wg 256,512 (workgroup sizes to try; those the device allows), stage 1536,2048 (caps on the exponent staging
 * words to try: workgroup memory decides how many workgroups a multiprocessor holds; default: the decoder's),
 * scan subgroup,workgroup (the decode's span
 * prefix sums to try: subgroup operations where the device has `subgroups`, workgroup memory), copy-mib,
 * layer 2048x512x8192 (hidden x kv dim x intermediate of a Llama layer unit, q k v o gate up down back to
 * back: its matrices decoded one dispatch each, as prepareLayer did, and as the ranges mergeDecodes makes
 * of them, as it does now, all in one pass; '' skips the line), fused 14336x4096,4096x4096
 * (rows x cols of fused decode + GEMV lines; none by default), only decode|fused (fused: skip the decode
 * lines; the fused shapes default to 14336x4096,4096x4096).
 * Timing: wall clock around submit + onSubmittedWorkDone over a batch, divided by the batch (the
 * summary uses it); with timestamp-query also the GPU time of one pass (gpu_* fields; browsers and
 * Dawn may quantize timestamps, so read them as a cross-check). GB/s counts BF16 output bytes (2 per weight).
 *
 * Fused lines (`df11-gemv-fused`, one per shape, workgroup size and row reduction (subgroups or not)): one
 * token's W · x three ways on the same matrix: fused decode + GEMV (src/gpu/kernels/df11-gemv.ts), decode
 * into a BF16 buffer then the forward's GEMV (what a non-resident DF11 layer does without fusedDecode), and
 * the GEMV on resident BF16 (the BF16 mode); fused GB/s counts the compressed bytes a call reads.
 * `max_rel_err_*`: worst |y - exact| / Σ|w·x| over rows against an f64 CPU product (f32 summation error,
 * ~1e-7; the decoded weights are exact).
 */
import { encodeUnit } from '../src/format/df11-encoder.ts';
import type { Df11Unit } from '../src/format/df11-types.ts';
import { bf16PairBytes, Df11Decoder, mergeDecodes } from '../src/gpu/df11-decode.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { Df11GemvKernel, gemvGeometry, gemvPartialsBytes } from '../src/gpu/kernels/df11-gemv.ts';
import { MatmulKernel } from '../src/gpu/kernels/matmul.ts';
import { concatBits } from '../src/testing/matrix-inputs.ts';
import { normalBf16 } from '../src/testing/random-weights.ts';
import { benchCopy, deviceName, gpuTime, keepBusy, wallClock } from './gpu-timing.ts';
import { stringOption, type OptionSpec, type OptionValues } from './options.ts';
import { emit, sig } from './report.ts';

/** Busy time before each decode line is measured (keepBusy). */
const WARM_MS = 500;

/** Official DFloat11 CUDA kernel on one H200, 14336 x 4096 (ANCHORS.md). */
const CUDA_ANCHOR_GBPS = 504;

export const DECODE_OPTIONS = {
  rows: { type: 'string', default: '14336' },
  cols: { type: 'string', default: '4096' },
  iters: { type: 'string', default: '20' },
  batch: { type: 'string', default: '20' },
  wg: { type: 'string', default: '256,512' },
  scan: { type: 'string', default: 'subgroup,workgroup' },
  stage: { type: 'string' },
  layer: { type: 'string', default: '2048x512x8192' },
  'copy-mib': { type: 'string', default: '1024' },
  fused: { type: 'string' },
  only: { type: 'string' },
} as const satisfies OptionSpec;

interface DecodeConfig {
  rows: number;
  cols: number;
  iters: number;
  batch: number;
}

async function benchDecode(gpu: Gpu, c: DecodeConfig, workgroupSize: number, subgroups: boolean, maxStageWords: number | undefined, source: Df11Unit, original: Uint16Array): Promise<number> {
  const decoder = await Df11Decoder.create(gpu, { workgroupSize, subgroups, maxStageWords });
  const n = original.length;
  const out = await gpu.createBuffer({ label: 'bench out', size: bf16PairBytes(n), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const unit = await decoder.upload(source);
  await keepBusy(gpu, WARM_MS, c.batch, (enc) => decoder.encodeMatrix(enc, unit, 0, out));
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
    workgroup_size: workgroupSize, scan: subgroups ? 'subgroup' : 'workgroup', stage_words: decoder.stageWords, iters: c.iters, batch: c.batch,
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

/**
 * A Llama layer unit of N(0, 0.02) weights (q k v o gate up down, hidden x kv dim x intermediate) uploaded to
 * `decoder`, and its decode as the forward records it: the merged ranges (one for a unit laid out like this),
 * each matrix at its unit offset in the output (multiples of 128 elements for these shapes: 256-byte aligned).
 */
export async function layerUnit(decoder: Df11Decoder, hidden: number, kv: number, inter: number) {
  const shapes = [[hidden, hidden], [kv, hidden], [kv, hidden], [hidden, hidden], [inter, hidden], [inter, hidden], [hidden, inter]];
  const names = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];
  const matrices = shapes.map((shape, i) => ({ name: names[i]!, shape, bits: normalBf16(shape[0]! * shape[1]!, 300 + i) }));
  const source = encodeUnit('layer', matrices);
  const unit = await decoder.upload(source);
  const decodes = source.matrices.map((m, index) => ({ unit, index, outOffset: m.offset * 2 }));
  const ranges = mergeDecodes(decodes);
  const jobs = await Promise.all(ranges.map((r) => decoder.createRangeJob(unit, r.begin, r.end)));
  /** Record the merged decode into `out` (bf16PairBytes(unit.n) bytes). */
  const encodeMerged = (pass: GPUComputePassEncoder, out: GPUBuffer) => ranges.forEach((r, k) => decoder.encodeRange(pass, jobs[k]!, out, r.outOffset));
  const destroy = () => {
    for (const j of jobs) j.destroy();
    unit.destroy();
  };
  return { matrices, unit, decodes, ranges, encodeMerged, destroy };
}

/** A Llama layer unit decoded per matrix (one dispatch each) and as merged ranges, in one pass each time. */
async function benchLayer(gpu: Gpu, c: DecodeConfig, hidden: number, kv: number, inter: number): Promise<void> {
  const decoder = await Df11Decoder.create(gpu);
  const { matrices, unit, decodes, ranges, encodeMerged, destroy } = await layerUnit(decoder, hidden, kv, inter);
  const n = unit.n;
  const out = await gpu.createBuffer({ label: 'bench layer out', size: bf16PairBytes(n), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const perMatrix = (pass: GPUComputePassEncoder) => decodes.forEach((d) => decoder.encodeMatrix(pass, unit, d.index, out, d.outOffset));
  const merged = (pass: GPUComputePassEncoder) => encodeMerged(pass, out);
  const inPass = (record: (pass: GPUComputePassEncoder) => void) => (enc: GPUCommandEncoder) => {
    const pass = enc.beginComputePass();
    record(pass);
    pass.end();
  };
  const original = concatBits(matrices);
  const result: Record<string, unknown> = {
    bench: 'df11-decode-layer', device: deviceName(gpu), hidden, kv, intermediate: inter, elements: n,
    workgroup_size: decoder.workgroupSize, scan: decoder.subgroups ? 'subgroup' : 'workgroup', dispatches_per_matrix: decodes.length, ranges: ranges.length,
  };
  for (const [name, record] of [['per_matrix', perMatrix], ['merged', merged]] as const) {
    const clear = gpu.device.createCommandEncoder();
    clear.clearBuffer(out); // so each way's check sees only its own writes
    gpu.submit([clear.finish()]);
    const ms = await wallClock(gpu, c.iters, c.batch, inPass(record));
    const gpuMs = await gpuTime(gpu, c.iters, record);
    await decoder.checkStatus();
    const got = new Uint16Array(await gpu.read(out), 0, n);
    let correct = true;
    for (let i = 0; i < n && correct; i++) correct = got[i] === original[i];
    Object.assign(result, { [`${name}_ms`]: sig(ms), [`${name}_gbps`]: sig((n * 2) / (ms * 1e6)), [`${name}_correct`]: correct });
    if (gpuMs !== null) Object.assign(result, { [`gpu_${name}_ms`]: sig(gpuMs), [`gpu_${name}_gbps`]: sig((n * 2) / (gpuMs * 1e6)) });
  }
  emit(result);
  out.destroy();
  destroy();
  decoder.destroy();
}

/** Bytes of a unit's arrays (what a full decode of it reads). */
function compressedBytes(u: Df11Unit): number {
  return u.encodedExponent.length + u.signMantissa.length + u.gaps.length + u.luts.length + u.outputPositions.byteLength;
}

/** Worst |y - exact| / Σ|w·x| over rows (f64 reference on the BF16 weights). */
function maxRelError(y: Float32Array, w: Uint16Array, x: Float32Array, fRows: number, fCols: number): number {
  const wf = new Float32Array(Uint32Array.from(w, (b) => b << 16).buffer);
  let worst = 0;
  for (let r = 0; r < fRows; r++) {
    let sum = 0;
    let abs = 0;
    for (let k = 0; k < fCols; k++) {
      const p = wf[r * fCols + k]! * x[k]!;
      sum += p;
      abs += Math.abs(p);
    }
    worst = Math.max(worst, abs === 0 ? Math.abs(y[r]!) : Math.abs(y[r]! - sum) / abs);
  }
  return worst;
}

/** Fused decode + GEMV vs decode then GEMV vs BF16 GEMV on one (fRows, fCols) matrix, per workgroup size. */
async function benchFused(gpu: Gpu, c: DecodeConfig, fRows: number, fCols: number, wgs: number[]): Promise<void> {
  const bits = normalBf16(fRows * fCols, 7);
  const unitSource = encodeUnit('fused', [{ name: 'weight', shape: [fRows, fCols], bits }]);
  const x = Float32Array.from({ length: fCols }, (_, k) => Math.sin(k * 0.37));
  const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const vec = async (n: number, label: string) => gpu.createBuffer({ label, size: Math.ceil((n * 4) / 16) * 16, usage: storage });
  const xBuf = await vec(fCols, 'x');
  gpu.writeBuffer(xBuf, 0, x);
  const outFused = await vec(fRows, 'fused out');
  const outDecoded = await vec(fRows, 'decode + gemv out');
  const outBf16 = await vec(fRows, 'bf16 gemv out');
  const bf16Bytes = bf16PairBytes(bits.length);
  const decoded = await gpu.createBuffer({ label: 'decoded', size: Math.ceil(bf16Bytes / 16) * 16, usage: storage });
  const resident = await gpu.createBuffer({ label: 'bf16 resident', size: Math.ceil(bf16Bytes / 16) * 16, usage: storage });
  gpu.writeBuffer(resident, 0, bits);
  const matmul = await MatmulKernel.create(gpu);
  const view = { offset: 0, rows: fRows, cols: fCols };
  const plain = await matmul.bind(xBuf, { binding: decoded, ...view }, undefined, outDecoded);
  const bf16Call = await matmul.bind(xBuf, { binding: resident, ...view }, undefined, outBf16);
  const perPass = (record: (pass: GPUComputePassEncoder) => void) => (enc: GPUCommandEncoder) => {
    const pass = enc.beginComputePass();
    record(pass);
    pass.end();
  };
  const bf16Rec = (pass: GPUComputePassEncoder) => bf16Call.encode(pass, { tokens: 1 });
  const bf16Ms = await wallClock(gpu, c.iters, c.batch, perPass(bf16Rec));
  const bf16GpuMs = await gpuTime(gpu, c.iters, bf16Rec);
  const errBf16 = maxRelError(new Float32Array(await gpu.read(outBf16), 0, fRows), bits, x, fRows, fCols);
  const reductions = gpu.features.subgroups ? [true, false] : [false];
  for (const [wg, subgroups] of wgs.flatMap((w) => reductions.map((r) => [w, r] as const))) {
    const decoder = await Df11Decoder.create(gpu, { workgroupSize: wg });
    const unit = await decoder.upload(unitSource);
    const gemv = await Df11GemvKernel.create(decoder, { subgroups, workgroupSize: wg });
    const geometry = gemvGeometry(unit, 0);
    const partials = await gpu.createBuffer({ label: 'partials', size: gemvPartialsBytes(geometry), usage: storage });
    const fused = await gemv.bind(unit, 0, { x: xBuf, out: outFused, partials });
    const fusedRec = (pass: GPUComputePassEncoder) => fused.encode(pass);
    const unfusedRec = (pass: GPUComputePassEncoder) => {
      decoder.encodeMatrix(pass, unit, 0, decoded);
      plain.encode(pass, { tokens: 1 });
    };
    const fusedMs = await wallClock(gpu, c.iters, c.batch, perPass(fusedRec));
    const unfusedMs = await wallClock(gpu, c.iters, c.batch, perPass(unfusedRec));
    const fusedGpuMs = await gpuTime(gpu, c.iters, fusedRec);
    const unfusedGpuMs = await gpuTime(gpu, c.iters, unfusedRec);
    await decoder.checkStatus();
    const errFused = maxRelError(new Float32Array(await gpu.read(outFused), 0, fRows), bits, x, fRows, fCols);
    const errUnfused = maxRelError(new Float32Array(await gpu.read(outDecoded), 0, fRows), bits, x, fRows, fCols);
    const read = compressedBytes(unitSource);
    const result: Record<string, unknown> = {
      bench: 'df11-gemv-fused',
      device: deviceName(gpu),
      rows: fRows, cols: fCols, workgroup_size: wg, subgroups, blocks: geometry.blocks, iters: c.iters, batch: c.batch,
      compressed_bytes: read, bf16_bytes: 2 * bits.length,
      fused_ms: sig(fusedMs), decode_gemv_ms: sig(unfusedMs), bf16_gemv_ms: sig(bf16Ms),
      fused_vs_decode_gemv: sig(unfusedMs / fusedMs), fused_vs_bf16_gemv: sig(bf16Ms / fusedMs),
      fused_compressed_gbps: sig(read / (fusedMs * 1e6)),
      fused_bf16_equivalent_gbps: sig((2 * bits.length) / (fusedMs * 1e6)),
      max_rel_err_fused: sig(errFused), max_rel_err_decode_gemv: sig(errUnfused), max_rel_err_bf16: sig(errBf16),
      correct: errFused < 1e-5 && errUnfused < 1e-5,
    };
    if (fusedGpuMs !== null && unfusedGpuMs !== null && bf16GpuMs !== null) {
      Object.assign(result, {
        gpu_fused_ms: sig(fusedGpuMs), gpu_decode_gemv_ms: sig(unfusedGpuMs), gpu_bf16_gemv_ms: sig(bf16GpuMs),
        gpu_fused_compressed_gbps: sig(read / (fusedGpuMs * 1e6)),
      });
    }
    emit(result);
    fused.destroy();
    partials.destroy();
    unit.destroy();
    decoder.destroy();
  }
  plain.destroy();
  bf16Call.destroy();
  for (const b of [xBuf, outFused, outDecoded, outBf16, decoded, resident]) b.destroy();
}

/** Runs the decode benchmark on `gpu` with `values` of DECODE_OPTIONS; emits its JSON lines. */
export async function runDecodeBench(gpu: Gpu, values: OptionValues): Promise<void> {
  const num = (name: 'rows' | 'cols' | 'iters' | 'batch' | 'copy-mib'): number => Number(stringOption(values, name, DECODE_OPTIONS[name].default));
  const c: DecodeConfig = { rows: num('rows'), cols: num('cols'), iters: Math.max(20, num('iters')), batch: Math.max(1, num('batch')) };
  const wg = stringOption(values, 'wg', DECODE_OPTIONS.wg.default)!;
  const sizes = wg.split(',').map(Number).filter((s) => s <= gpu.limits.maxComputeInvocationsPerWorkgroup);
  const scans = stringOption(values, 'scan', DECODE_OPTIONS.scan.default)!.split(',')
    .filter((s) => s === 'workgroup' || (s === 'subgroup' && gpu.features.subgroups)).map((s) => s === 'subgroup');
  const only = stringOption(values, 'only');
  if (only !== 'fused') {
    const original = normalBf16(c.rows * c.cols, 2024);
    const source = encodeUnit('bench', [{ name: 'weight', shape: [c.rows, c.cols], bits: original }]);
    let best = 0;
    // staging caps to try ('' = the decoder's default)
    const stages = (stringOption(values, 'stage') ?? '').split(',').map((s) => (s ? Number(s) : undefined));
    for (const size of sizes) for (const sg of scans) for (const st of stages) best = Math.max(best, await benchDecode(gpu, c, size, sg, st, source, original));
    const copy = await benchCopy(gpu, num('copy-mib'), c.iters);
    const layer = stringOption(values, 'layer', DECODE_OPTIONS.layer.default)!;
    if (layer) {
      const [hidden, kv, inter] = layer.split('x').map(Number) as [number, number, number];
      await benchLayer(gpu, c, hidden, kv, inter);
    }
    emit({ bench: 'df11-decode-summary', device: deviceName(gpu), elements: c.rows * c.cols, decode_gbps: sig(best), shader_copy_gbps_rw: sig(copy), decode_vs_shader_copy_rw: sig(best / copy), vs_cuda_504: sig(best / CUDA_ANCHOR_GBPS) });
  }
  const fusedShapes = stringOption(values, 'fused') ?? (only === 'fused' ? '14336x4096,4096x4096' : '');
  for (const shape of fusedShapes.split(',').filter(Boolean)) {
    const [fRows, fCols] = shape.split('x').map(Number) as [number, number];
    await benchFused(gpu, c, fRows, fCols, sizes);
  }
}
