/**
 * Gated DeltaNet micro-benchmark: the two kernels of a Qwen3.5 linear-attention layer at Qwen3.5-2B's shape
 * (16 key / 16 value heads of 128, conv kernel 4: 6144 conv channels; test/fixtures/configs/qwen3.5-2b.json),
 * for a decode step (1 token) and prefill chunks (the recurrence runs token by token in both). One JSON line
 * per (kernel, tokens): ms per call (wall clock over --batch calls per submit, median of --iters; with
 * timestamp-query also the GPU time of one call in its own pass), µs per token, and the share of a decode
 * step's 18 Gated DeltaNet layers (`per_model_token_ms` = 18 × ms per token).
 *
 *   npx tsx bench/linear-attention-bench.ts --small      # smoke test on SwiftShader (tiny shape)
 *   node bench/build.mjs && node dist-bench/linear-attention-bench.mjs   # on the GPU machine
 *
 * Options: --tokens 1,64,512, --iters N, --batch B.
 */
import { parseArgs } from 'node:util';
import { Conv1dKernel } from '../src/gpu/kernels/conv1d.ts';
import { DeltaRuleKernel } from '../src/gpu/kernels/delta-rule.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { deviceName, gpuTime, wallClock, BENCH_DAWN_FLAGS } from './gpu-timing.ts';
import { emit, sig } from './report.ts';
import { benchShaders } from './shaders.ts';

const { values } = parseArgs({
  options: {
    small: { type: 'boolean', default: false },
    tokens: { type: 'string' },
    iters: { type: 'string' },
    batch: { type: 'string' },
  },
});
const small = values.small;
const tokenCounts = (values.tokens ?? (small ? '1,5' : '1,64,512')).split(',').map(Number);
const iters = Number(values.iters ?? (small ? 3 : 20));
const batch = Number(values.batch ?? (small ? 1 : 10));
/** Gated DeltaNet layers of Qwen3.5-2B (18 of 24). */
const LINEAR_LAYERS = 18;
const shape = small
  ? { keyHeads: 2, valueHeads: 4, keyHeadDim: 16, valueHeadDim: 16, kernel: 4 }
  : { keyHeads: 16, valueHeads: 16, keyHeadDim: 128, valueHeadDim: 128, kernel: 4 };
const convDim = 2 * shape.keyHeads * shape.keyHeadDim + shape.valueHeads * shape.valueHeadDim;
const valueDim = shape.valueHeads * shape.valueHeadDim;
/** A mixer input row: qkv | z | b | a, as the forward lays it out. */
const projDim = convDim + valueDim + 2 * shape.valueHeads;

const gpu = await createNodeGpu({ shaders: benchShaders }, BENCH_DAWN_FLAGS);
const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
const filled = (n: number, f: (i: number) => number) => gpu.upload(Float32Array.from({ length: n }, (_, i) => f(i)), 'bench data', usage);
const [conv1d, deltaRule] = await Promise.all([Conv1dKernel.create(gpu), DeltaRuleKernel.create(gpu)]);
const maxTokens = Math.max(...tokenCounts);
const proj = await filled(maxTokens * projDim, (i) => Math.sin(i * 0.37));
const convWeight = await filled(convDim * shape.kernel, (i) => Math.cos(i * 0.11) * 0.5);
const convState = await filled((shape.kernel - 1) * convDim, () => 0);
const convOut = await filled(maxTokens * convDim, () => 0);
const aLog = await filled(shape.valueHeads, (i) => Math.log(1 + i));
const dtBias = await filled(shape.valueHeads, () => 1);
const normW = await filled(shape.valueHeadDim, () => 1);
const state = await filled(shape.valueHeads * shape.keyHeadDim * shape.valueHeadDim, () => 0);
const out = await filled(maxTokens * valueDim, () => 0);
const convCall = await conv1d.bind(proj, convWeight, convState, convOut);
const deltaCall = await deltaRule.bind(convOut, proj, aLog, dtBias, normW, state, out);

for (const tokens of tokenCounts) {
  const kernels: Array<[string, (pass: GPUComputePassEncoder) => void]> = [
    ['conv1d', (pass) => convCall.encode(pass, { tokens, channels: convDim, kernel: shape.kernel, srcTokenStride: projDim, fresh: false })],
    [
      'delta_rule',
      (pass) =>
        deltaCall.encode(pass, {
          tokens,
          ...shape,
          projTokenStride: projDim,
          zOffset: convDim,
          bOffset: convDim + valueDim,
          aOffset: convDim + valueDim + shape.valueHeads,
          fresh: false,
          eps: 1e-6,
        }),
    ],
  ];
  for (const [kernel, record] of kernels) {
    const ms = await wallClock(gpu, iters, batch, (encoder) => {
      const pass = encoder.beginComputePass();
      record(pass);
      pass.end();
    });
    const gpuMs = await gpuTime(gpu, iters, record);
    const perToken = (gpuMs ?? ms) / tokens;
    const result: Record<string, unknown> = {
      bench: 'linear-attention',
      device: deviceName(gpu),
      kernel,
      shape: small ? 'tiny' : 'qwen3.5-2b',
      tokens,
      median_ms: sig(ms),
      us_per_token: sig(perToken * 1000),
      per_model_token_ms: sig(LINEAR_LAYERS * perToken),
    };
    if (gpuMs !== null) result.gpu_median_ms = sig(gpuMs);
    emit(result);
  }
}
gpu.destroy();
