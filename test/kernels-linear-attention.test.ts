import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../src/gpu/gpu.ts';
import { Conv1dKernel } from '../src/gpu/kernels/conv1d.ts';
import { DeltaRuleKernel } from '../src/gpu/kernels/delta-rule.ts';
import { OutputGateKernel } from '../src/gpu/kernels/output-gate.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { conv1dReference, deltaRuleReference, type DeltaRuleShape } from './gated-deltanet-reference.ts';
import { gpuData, poisoned, randomF32, readF32, rng, runPass, worstMismatch } from './kernels-helpers.ts';

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number, what: string): void {
  const bad = worstMismatch(actual, expected, atol, rtol);
  expect(bad, `${what}: at ${bad} got ${actual[bad]} want ${expected[bad]}`).toBe(-1);
}

/** Each kernel runs a sequence in two steps (fresh, then continuing from its state) against one CPU pass over the whole sequence. */
for (const forceDefaultLimits of [false, true]) {
  describe(`Gated DeltaNet kernels (${forceDefaultLimits ? 'default limits' : 'adapter limits'})`, () => {
    let gpu: Gpu;
    beforeAll(async () => {
      gpu = await createNodeGpu({ forceDefaultLimits });
    });
    afterAll(() => gpu?.destroy());

    it('conv1d: causal depthwise conv + SiLU with its rolling state matches a CPU reference', async () => {
      const kernel = await Conv1dKernel.create(gpu);
      const random = rng(41);
      // [channels, kernel, first step's tokens, second step's tokens, extra src columns]
      for (const [channels, K, n1, n2, pad] of [[1, 1, 1, 1, 0], [5, 4, 1, 1, 3], [70, 4, 2, 5, 1], [130, 5, 7, 1, 0], [3, 4, 9, 2, 2]] as const) {
        const stride = channels + pad;
        const tokens = n1 + n2;
        const x = randomF32(tokens * stride, random, 2);
        const weight = randomF32(channels * K, random);
        const expected = conv1dReference(x, { tokens, channels, kernel: K, srcTokenStride: stride }, weight, null);
        const [wb, state] = await Promise.all([gpuData(gpu, weight), poisoned(gpu, Math.max(1, (K - 1) * channels))]);
        const out: Float32Array[] = [];
        for (const [from, n] of [[0, n1], [n1, n2]] as const) {
          const [src, ob] = await Promise.all([gpuData(gpu, x.subarray(from * stride, (from + n) * stride)), poisoned(gpu, n * channels + 3)]);
          const call = await kernel.bind(src, wb, state, ob);
          await runPass(gpu, (pass) => call.encode(pass, { tokens: n, channels, kernel: K, srcTokenStride: stride, fresh: from === 0 }));
          const got = await readF32(gpu, ob, n * channels + 3);
          expect(got.subarray(n * channels).every(Number.isNaN), 'writes past the output').toBe(true);
          out.push(got.subarray(0, n * channels));
        }
        const what = `conv1d ${channels} channels, kernel ${K}, ${n1} + ${n2} tokens`;
        expectClose(Float32Array.from([...out[0]!, ...out[1]!]), expected.out, 1e-5, 1e-5, what);
        // The state holds inputs: copied, so bit-exact.
        if (K > 1) expect([...(await readF32(gpu, state, (K - 1) * channels))], `${what}: state`).toEqual([...expected.state]);
      }
    });

    it('delta rule: gated delta rule + gated RMSNorm over the recurrent state matches a CPU reference', async () => {
      const kernel = await DeltaRuleKernel.create(gpu);
      const random = rng(42);
      // [key heads, value heads, key head dim, value head dim, first step's tokens, second step's tokens]
      const cases = [[1, 1, 1, 1, 1, 1], [2, 4, 16, 16, 3, 1], [1, 3, 70, 5, 1, 2], [2, 2, 3, 130, 2, 2], [1, 2, 256, 7, 1, 1]] as const;
      for (const [nk, nv, dk, dv, n1, n2] of cases) {
        const tokens = n1 + n2;
        const convDim = 2 * nk * dk + nv * dv;
        // proj rows as the forward has them: [qkv (unused here) | z | b | a] plus slack.
        const shape: DeltaRuleShape = { tokens, keyHeads: nk, valueHeads: nv, keyHeadDim: dk, valueHeadDim: dv, projTokenStride: 3 + nv * dv + 2 * nv + 1, zOffset: 3, bOffset: 3 + nv * dv, aOffset: 3 + nv * dv + nv, eps: 1e-6 };
        const conv = randomF32(tokens * convDim, random, 2);
        const proj = randomF32(tokens * shape.projTokenStride, random, 3);
        const aLog = randomF32(nv, random, 2);
        const dtBias = randomF32(nv, random);
        const normW = randomF32(dv, random, 2);
        const expected = deltaRuleReference(conv, proj, aLog, dtBias, normW, null, shape);
        const [al, dt, nw, state] = await Promise.all([gpuData(gpu, aLog), gpuData(gpu, dtBias), gpuData(gpu, normW), poisoned(gpu, nv * dk * dv)]);
        const out: Float32Array[] = [];
        for (const [from, n] of [[0, n1], [n1, n2]] as const) {
          const [cb, pb, ob] = await Promise.all([
            gpuData(gpu, conv.subarray(from * convDim, (from + n) * convDim)),
            gpuData(gpu, proj.subarray(from * shape.projTokenStride, (from + n) * shape.projTokenStride)),
            poisoned(gpu, n * nv * dv + 3),
          ]);
          const call = await kernel.bind(cb, pb, al, dt, nw, state, ob);
          await runPass(gpu, (pass) => call.encode(pass, { ...shape, tokens: n, fresh: from === 0 }));
          const got = await readF32(gpu, ob, n * nv * dv + 3);
          expect(got.subarray(n * nv * dv).every(Number.isNaN), 'writes past the output').toBe(true);
          out.push(got.subarray(0, n * nv * dv));
        }
        const what = `delta rule ${nk}/${nv} heads, ${dk}x${dv}, ${n1} + ${n2} tokens`;
        expectClose(Float32Array.from([...out[0]!, ...out[1]!]), expected.out, 1e-4, 1e-4, what);
        expectClose(await readF32(gpu, state, nv * dk * dv), expected.state, 1e-5, 1e-4, `${what}: state`);
      }
    });

    it('output gate: out *= sigmoid(gate) with the gate strided per head', async () => {
      const kernel = await OutputGateKernel.create(gpu);
      const random = rng(43);
      for (const [tokens, heads, headDim, gateOffset] of [[1, 1, 1, 0], [3, 4, 16, 16], [2, 3, 70, 5]] as const) {
        const gateTokenStride = 2 * heads * headDim + 7;
        const src = randomF32(gateOffset + tokens * gateTokenStride, random, 4);
        const x = randomF32(tokens * heads * headDim + 2, random, 2);
        const [sb, ob] = await Promise.all([gpuData(gpu, src), gpuData(gpu, x)]);
        const call = await kernel.bind(sb, ob);
        await runPass(gpu, (pass) => call.encode(pass, { tokens, heads, headDim, gateOffset, gateTokenStride, gateHeadStride: 2 * headDim }));
        const got = await readF32(gpu, ob, x.length);
        const expected = Float64Array.from(x, (v, i) => {
          if (i >= tokens * heads * headDim) return v; // untouched past the end
          const t = Math.floor(i / (heads * headDim));
          const h = Math.floor((i % (heads * headDim)) / headDim);
          const g = src[gateOffset + t * gateTokenStride + h * 2 * headDim + (i % headDim)]!;
          return v / (1 + Math.exp(-g));
        });
        expectClose(got, expected, 1e-6, 1e-5, `output gate ${tokens}x${heads}x${headDim}`);
      }
    });
  });
}
