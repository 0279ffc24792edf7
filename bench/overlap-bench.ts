/**
 * Does Dawn/Vulkan run a DF11 layer decode beside the GEMVs of the layer before it? (issue 11: "decode
 * overlapped with compute"). One pass per measurement, timed by the wall clock over a submit of `batch`
 * passes: the decode of one 1B layer unit (one range decode into its own buffer), the four GEMVs of a 1B
 * layer on resident BF16 weights (q|k|v, o, gate|up, down), and both in one pass, in both orders. The GEMVs
 * either write one shared output buffer (each dispatch after the first writes what the one before wrote,
 * as in a forward: Dawn puts a barrier before it) or buffers never written before, a new set for every
 * pass (no hazard between them nor with the decode: nothing for a barrier to wait on inside the pass). If
 * the GPU overlaps the decode with the GEMVs, "both" reads less than the sum of the parts. Measured on the
 * H200 (bench/RESULTS.md): it does not, either way.
 *
 *   node bench/build.mjs && bash .gpu/run node dist-bench/overlap-bench.mjs
 */
import { parseArgs } from 'node:util';
import { bf16PairBytes, Df11Decoder } from '../src/gpu/df11-decode.ts';
import { MatmulKernel, type MatmulCall } from '../src/gpu/kernels/matmul.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { normalBf16 } from '../src/testing/random-weights.ts';
import { layerUnit } from './decode-suite.ts';
import { BENCH_DAWN_FLAGS, deviceName, reportFrom, wallClock } from './gpu-timing.ts';
import { emit, sig } from './report.ts';
import { benchShaders } from './shaders.ts';

const { values } = parseArgs({ options: { iters: { type: 'string', default: '20' }, batch: { type: 'string', default: '20' }, layer: { type: 'string', default: '2048x512x8192' } } });
const iters = Math.max(20, Number(values.iters));
const batch = Math.max(1, Number(values.batch));
const [hidden, kv, inter] = values.layer!.split('x').map(Number) as [number, number, number];

const gpu = await createNodeGpu({ shaders: benchShaders }, BENCH_DAWN_FLAGS);
reportFrom(gpu, 'node');
const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

// the decode: one layer unit, one range decode
const decoder = await Df11Decoder.create(gpu);
const layer = await layerUnit(decoder, hidden, kv, inter);
const decoded = await gpu.createBuffer({ label: 'decoded layer', size: bf16PairBytes(layer.unit.n), usage });
const decode = (pass: GPUComputePassEncoder) => layer.encodeMerged(pass, decoded);

// the GEMVs: resident BF16 weights of another layer, x never written in the pass
const matmul = await MatmulKernel.create(gpu);
const gemvShapes = [[hidden + 2 * kv, hidden], [hidden, hidden], [2 * inter, hidden], [hidden, inter]] as const;
const x = await gpu.createBuffer({ label: 'x', size: 4 * inter, usage });
gpu.writeBuffer(x, 0, new Float32Array(inter).fill(0.01));
const shared = await gpu.createBuffer({ label: 'shared out', size: 4 * 2 * inter, usage });
const sharedCalls: MatmulCall[] = [];
// "fresh": every pass of every timed submit (3 warm-up submits + iters, 3 timings) writes output buffers
// never written before, so Dawn has no reason for a barrier anywhere in a pass
const freshSets: MatmulCall[][] = [];
const passes = 3 * (3 + iters) * batch;
const weights: GPUBuffer[] = [];
for (const [i, [rows, cols]] of gemvShapes.entries()) {
  const w = await gpu.createBuffer({ label: `w${i}`, size: rows * cols * 2, usage });
  gpu.writeBuffer(w, 0, normalBf16(rows * cols, 900 + i));
  weights.push(w);
  sharedCalls.push(await matmul.bind(x, { binding: w, offset: 0, rows, cols }, undefined, shared));
}
for (let p = 0; p < passes; p++) {
  const set: MatmulCall[] = [];
  for (const [i, [rows, cols]] of gemvShapes.entries()) {
    const own = await gpu.createBuffer({ label: `out${i} #${p}`, size: 4 * rows, usage });
    set.push(await matmul.bind(x, { binding: weights[i]!, offset: 0, rows, cols }, undefined, own));
  }
  freshSets.push(set);
}
let nextFresh = 0;
const gemvs = (calls: MatmulCall[] | 'fresh') => (pass: GPUComputePassEncoder) =>
  (calls === 'fresh' ? freshSets[nextFresh++ % passes]! : calls).forEach((c) => c.encode(pass, { tokens: 1 }));

const timed = (...parts: Array<(pass: GPUComputePassEncoder) => void>): Promise<number> =>
  wallClock(gpu, iters, batch, (encoder) => {
    const pass = encoder.beginComputePass();
    for (const p of parts) p(pass);
    pass.end();
  });

const line: Record<string, unknown> = { bench: 'decode-gemv-overlap', device: deviceName(gpu), hidden, kv, intermediate: inter, iters, batch };
for (const [name, calls] of [['shared', sharedCalls], ['fresh', 'fresh']] as const) {
  const d = await timed(decode);
  const g = await timed(gemvs(calls));
  const dg = await timed(decode, gemvs(calls));
  const gd = await timed(gemvs(calls), decode);
  Object.assign(line, {
    [`decode_${name}_ms`]: sig(d), [`gemvs_${name}_ms`]: sig(g), [`decode_then_gemvs_${name}_ms`]: sig(dg), [`gemvs_${name}_then_decode_ms`]: sig(gd),
    [`overlap_${name}`]: sig((d + g - Math.min(dg, gd)) / Math.min(d, g)), // 0: none; 1: the shorter part hidden entirely
  });
}
emit(line);
gpu.destroy();
