/**
 * Matmul micro-benchmark: every GEMV variant this device can run (src/gpu/kernels/matmul.ts gemvVariants:
 * threads per workgroup, lanes per row group, rows per group, subgroup or workgroup-memory reduction) on
 * the large decode matrices, and the prefill GEMM's tile variants on 1B-shape projections at 512 tokens.
 * One JSON line per (variant, shape), then a summary line per kernel naming the fastest variant, all read
 * against the shader-copy bandwidth measured in the same run.
 *
 *   npx tsx bench/matmul-bench.ts --small          # smoke test on SwiftShader (tiny shapes)
 *   node bench/build.mjs && node dist-bench/matmul-bench.mjs   # on the GPU machine
 *
 * Options: --gemv 14336x4096,4096x14336,128256x4096 (rows x cols), --gemm 3072x2048,16384x2048,2048x8192,
 * --tokens 512 (GEMM tokens), --iters N, --batch B (dispatches per submit), --copy-mib M, --only gemv|gemm,
 * --variants t256-l256-r4-sg,... (GEMV variants by name; default all, --small two).
 * Timing: wall clock around submit + onSubmittedWorkDone over B dispatches, divided by B (median of N);
 * with timestamp-query also the GPU time of one dispatch in its own pass (gpu_* fields). Weight GB/s counts
 * the BF16 matrix bytes once per GEMV. Each variant's output is checked on a few rows against a CPU sum.
 */
import { parseArgs } from 'node:util';
import type { Gpu } from '../src/gpu/gpu.ts';
import { gemvVariantName, gemvVariants, MatmulKernel, type MatmulOptions } from '../src/gpu/kernels/matmul.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { tiledNormalBf16 } from '../src/testing/random-weights.ts';
import { benchCopy, deviceName, gpuTime, wallClock, BENCH_DAWN_FLAGS } from './gpu-timing.ts';
import { emit, sig } from './report.ts';
import { benchShaders } from './shaders.ts';

const { values } = parseArgs({
  options: {
    small: { type: 'boolean', default: false },
    gemv: { type: 'string' },
    gemm: { type: 'string' },
    tokens: { type: 'string' },
    iters: { type: 'string' },
    batch: { type: 'string' },
    'copy-mib': { type: 'string' },
    only: { type: 'string' },
    variants: { type: 'string' },
  },
});
const small = values.small;
const shapes = (s: string): Array<[number, number]> => s.split(',').map((x) => x.split('x').map(Number) as [number, number]);
const gemvShapes = shapes(values.gemv ?? (small ? '96x256,256x96' : '14336x4096,4096x14336,128256x4096'));
const gemmShapes = shapes(values.gemm ?? (small ? '64x128' : '3072x2048,16384x2048,2048x8192'));
const gemmTokens = Number(values.tokens ?? (small ? 70 : 512));
const iters = Number(values.iters ?? (small ? 3 : 20));
const batch = Number(values.batch ?? (small ? 1 : 10));
const copyMib = Number(values['copy-mib'] ?? (small ? 16 : 1024));

/** n BF16 weights: a 2^20-element N(0, 0.02) block repeated (contents do not affect the timing). */
const weights = (n: number, seed: number): Uint16Array => tiledNormalBf16(n, seed, 2 ** 20);

function bf16(bits: number): number {
  return new Float32Array(Uint32Array.of(bits << 16).buffer)[0]!;
}

interface Problem {
  rows: number;
  cols: number;
  tokens: number;
  w: Uint16Array;
  x: Float32Array;
  wBuf: GPUBuffer;
  xBuf: GPUBuffer;
  outBuf: GPUBuffer;
}

async function problem(gpu: Gpu, rows: number, cols: number, tokens: number): Promise<Problem> {
  const w = weights(rows * cols, rows + cols);
  const x = Float32Array.from({ length: tokens * cols }, (_, i) => Math.sin(i * 0.37));
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const wBuf = await gpu.upload(w, `w ${rows}x${cols}`, usage);
  const xBuf = await gpu.upload(x, 'x', usage);
  const outBuf = await gpu.createBuffer({ label: 'out', size: Math.ceil((tokens * rows * 4) / 16) * 16, usage });
  return { rows, cols, tokens, w, x, wBuf, xBuf, outBuf };
}

/** Largest |gpu - cpu| / (1e-3 + |cpu|) over a few rows of token 0 and the last token. */
async function maxError(gpu: Gpu, p: Problem): Promise<number> {
  const out = new Float32Array(await gpu.read(p.outBuf, 0, p.tokens * p.rows * 4));
  let worst = 0;
  for (const t of new Set([0, p.tokens - 1])) {
    for (const r of new Set([0, 1, Math.floor(p.rows / 2), p.rows - 1])) {
      let s = 0;
      for (let k = 0; k < p.cols; k++) s += bf16(p.w[r * p.cols + k]!) * p.x[t * p.cols + k]!;
      const got = out[t * p.rows + r]!;
      worst = Math.max(worst, Number.isFinite(got) ? Math.abs(got - s) / (1e-3 + Math.abs(s)) : Infinity);
    }
  }
  return worst;
}

/** Time one matmul configuration on problem p; emits and returns its wall-clock ms. */
async function run(gpu: Gpu, p: Problem, options: MatmulOptions, fields: Record<string, unknown>, copyGbps: number): Promise<number> {
  const kernel = await MatmulKernel.create(gpu, options);
  const call = await kernel.bind(p.xBuf, { binding: p.wBuf, offset: 0, rows: p.rows, cols: p.cols }, undefined, p.outBuf);
  const args = { tokens: p.tokens };
  const ms = await wallClock(gpu, iters, 1, (enc) => {
    const pass = enc.beginComputePass();
    for (let i = 0; i < batch; i++) call.encode(pass, args);
    pass.end();
  }) / batch;
  const gpuMs = await gpuTime(gpu, iters, (pass) => call.encode(pass, args));
  const weightBytes = p.rows * p.cols * 2;
  const flops = 2 * p.rows * p.cols * p.tokens;
  const result: Record<string, unknown> = {
    ...fields,
    device: deviceName(gpu),
    rows: p.rows,
    cols: p.cols,
    tokens: p.tokens,
    median_ms: sig(ms),
    weight_gbps: sig(weightBytes / (ms * 1e6)),
    weight_vs_copy_rw: sig(weightBytes / (ms * 1e6) / copyGbps),
    tflops: sig(flops / (ms * 1e9)),
    max_rel_err: sig(await maxError(gpu, p)),
  };
  if (gpuMs !== null) Object.assign(result, { gpu_median_ms: sig(gpuMs), gpu_weight_gbps: sig(weightBytes / (gpuMs * 1e6)), gpu_tflops: sig(flops / (gpuMs * 1e9)) });
  emit(result);
  call.destroy();
  return ms;
}

const gpu = await createNodeGpu({ shaders: benchShaders }, BENCH_DAWN_FLAGS);
const copy = await benchCopy(gpu, copyMib, iters);
const only = values.only;

const chosen = values.variants?.split(',') ?? (small ? ['t256-l256-r4', 't256-l256-r4-sg'] : undefined);
const variants = gemvVariants(gpu).filter((v) => !chosen || chosen.includes(gemvVariantName(v)));
if (only === undefined || only === 'gemv') {
  const total = new Map<string, number>();
  for (const [rows, cols] of gemvShapes) {
    const p = await problem(gpu, rows, cols, 1);
    for (const v of variants) {
      const name = gemvVariantName(v);
      const ms = await run(gpu, p, { gemv: v, gemvMaxTokens: Infinity }, { bench: 'gemv', variant: name, threads: v.threads, lanes: v.lanes, rows_per_group: v.rows, subgroups: v.subgroups }, copy);
      total.set(name, (total.get(name) ?? 0) + ms);
    }
    for (const b of [p.wBuf, p.xBuf, p.outBuf]) b.destroy();
  }
  const ranked = [...total].sort((a, b) => a[1] - b[1]);
  const bytes = gemvShapes.reduce((a, [r, c]) => a + r * c * 2, 0);
  emit({
    bench: 'gemv-summary',
    device: deviceName(gpu),
    shapes: gemvShapes.map(([r, c]) => `${r}x${c}`),
    shader_copy_gbps_rw: copy,
    ranking: ranked.slice(0, 8).map(([name, ms]) => ({ variant: name, total_ms: sig(ms), weight_gbps: sig(bytes / (ms * 1e6)), vs_copy_rw: sig(bytes / (ms * 1e6) / copy) })),
  });
}

if (only === undefined || only === 'gemm') {
  for (const [rows, cols] of gemmShapes) {
    const p = await problem(gpu, rows, cols, gemmTokens);
    for (const tr of [4, 8] as const) {
      await run(gpu, p, { gemvMaxTokens: 0, gemmRowsPerThread: tr }, { bench: 'gemm', variant: `tr${tr}`, tile_tokens_x_rows: `64x${16 * tr}` }, copy);
    }
    for (const b of [p.wBuf, p.xBuf, p.outBuf]) b.destroy();
  }
}
gpu.destroy();
