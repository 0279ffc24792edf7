import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../src/gpu/gpu.ts';
import { EmbedKernel } from '../src/gpu/kernels/embed.ts';
import { RmsNormKernel } from '../src/gpu/kernels/rmsnorm.ts';
import { RopeKernel } from '../src/gpu/kernels/rope.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { inverseFrequencies, ropeTable } from '../src/model/rope-table.ts';
import { bf16ToF32, gpuData, poisoned, randomBf16, randomF32, readF32, rng, runPass, worstMismatch } from './kernels-helpers.ts';

function expectClose(actual: Float32Array, expected: Float32Array, atol: number, rtol: number, what: string): void {
  const bad = worstMismatch(actual, expected, atol, rtol);
  expect(bad, `${what}: at ${bad} got ${actual[bad]} want ${expected[bad]}`).toBe(-1);
}

for (const forceDefaultLimits of [false, true]) {
  describe(`forward kernels (${forceDefaultLimits ? 'default limits' : 'adapter limits'})`, () => {
    let gpu: Gpu;
    beforeAll(async () => {
      gpu = await createNodeGpu({ forceDefaultLimits });
    });
    afterAll(() => gpu?.destroy());

    it('embed converts BF16 rows from an offset, bit-exact', async () => {
      const kernel = await EmbedKernel.create(gpu);
      const random = rng(1);
      for (const [tokens, dim, rowsOffset, scale] of [[1, 1, 0, 1], [3, 7, 1, 1], [5, 96, 6, 8], [2, 385, 3, 33.75]] as const) {
        const bits = randomBf16(rowsOffset + tokens * dim + 1, random);
        const rows = await gpuData(gpu, bits);
        const out = await poisoned(gpu, tokens * dim + 4);
        const call = await kernel.bind(rows, out);
        await runPass(gpu, (pass) => call.encode(pass, { tokens, dim, rowsOffset, scale }));
        const actual = await readF32(gpu, out, tokens * dim + 4);
        const expected = bf16ToF32(bits).subarray(rowsOffset, rowsOffset + tokens * dim).map((x) => x * scale);
        expect([...actual.subarray(0, tokens * dim)]).toEqual([...expected]);
        expect(actual.subarray(tokens * dim).every(Number.isNaN)).toBe(true);
      }
    });

    it('rmsnorm matches a CPU reference', async () => {
      const kernel = await RmsNormKernel.create(gpu);
      const random = rng(2);
      for (const [rows, dim, inOffset, outOffset, accumulate] of [[1, 1, 0, 0, false], [3, 7, 2, 1, true], [4, 96, 0, 5, false], [2, 385, 7, 0, true], [1, 2048, 0, 0, false]] as const) {
        const x = randomF32(inOffset + rows * dim, random, 3);
        const w = randomF32(dim, random);
        const eps = 1e-5;
        const prior = randomF32(outOffset + rows * dim, random, 2);
        const [xb, wb, ob] = await Promise.all([gpuData(gpu, x), gpuData(gpu, w), accumulate ? gpuData(gpu, prior) : poisoned(gpu, outOffset + rows * dim)]);
        const call = await kernel.bind(xb, wb, ob);
        await runPass(gpu, (pass) => call.encode(pass, { rows, dim, eps, inOffset, outOffset, accumulate }));
        const actual = (await readF32(gpu, ob, outOffset + rows * dim)).subarray(outOffset);
        const expected = new Float32Array(rows * dim);
        for (let r = 0; r < rows; r++) {
          let s = 0;
          for (let i = 0; i < dim; i++) s += x[inOffset + r * dim + i]! ** 2;
          const inv = 1 / Math.sqrt(s / dim + eps);
          for (let i = 0; i < dim; i++) expected[r * dim + i] = x[inOffset + r * dim + i]! * inv * w[i]! + (accumulate ? prior[outOffset + r * dim + i]! : 0);
        }
        expectClose(actual, expected, 1e-6, 1e-5, `rmsnorm ${rows}x${dim}${accumulate ? ' +=' : ''}`);
      }
    });

    it('rope (norm, rotate, scatter into a cache layout) matches a CPU reference', async () => {
      const kernel = await RopeKernel.create(gpu);
      const random = rng(4);
      const cases = [
        { tokens: 1, heads: 1, headDim: 2, pos0: 0, maxSeq: 4, norm: false, rotate: true, cache: false },
        { tokens: 3, heads: 2, headDim: 16, rotaryDim: 12, pos0: 5, maxSeq: 9, norm: false, rotate: true, cache: true },
        { tokens: 2, heads: 3, headDim: 64, rotaryDim: 16, pos0: 1, maxSeq: 4, norm: true, rotate: true, cache: false },
        { tokens: 3, heads: 5, headDim: 6, pos0: 4, maxSeq: 9, norm: true, rotate: true, cache: true },
        { tokens: 7, heads: 3, headDim: 64, pos0: 11, maxSeq: 20, norm: true, rotate: true, cache: false },
        { tokens: 2, heads: 2, headDim: 256, pos0: 1, maxSeq: 5, norm: false, rotate: false, cache: true },
        { tokens: 4, heads: 2, headDim: 130, pos0: 300, maxSeq: 310, norm: false, rotate: true, cache: true },
        // Qwen3.5's gated q_proj: each head's query followed by its gate (heads 2 head_dim apart).
        { tokens: 3, heads: 4, headDim: 16, rotaryDim: 4, pos0: 2, maxSeq: 6, norm: true, rotate: true, cache: false, srcHeadStride: 32 },
      ];
      for (const c of cases) {
        const srcOffset = 3;
        const srcHeadStride = c.srcHeadStride ?? c.headDim;
        const srcTokenStride = c.heads * srcHeadStride + 5;
        const src = randomF32(srcOffset + c.tokens * srcTokenStride, random, 2);
        const normW = randomF32(c.headDim, random);
        const rotaryDim = c.rotaryDim ?? c.headDim;
        const rope = { theta: 10000, type: 'default' as const, rotaryDim };
        const table = ropeTable(rope, c.maxSeq);
        const dst = c.cache
          ? { headStride: c.maxSeq * c.headDim, tokenStride: c.headDim, atPosition: true }
          : { headStride: c.headDim, tokenStride: c.heads * c.headDim, atPosition: false };
        const dstLen = c.cache ? c.heads * c.maxSeq * c.headDim : c.tokens * c.heads * c.headDim;
        const [sb, tb, nb, db] = await Promise.all([gpuData(gpu, src), gpuData(gpu, table), gpuData(gpu, normW), poisoned(gpu, dstLen)]);
        const call = await kernel.bind(sb, tb, nb, db);
        const eps = 1e-6;
        await runPass(gpu, (pass) =>
          call.encode(pass, { tokens: c.tokens, heads: c.heads, headDim: c.headDim, pos0: c.pos0, srcOffset, srcTokenStride, srcHeadStride, dst, rotate: c.rotate, rotaryDim: c.rotaryDim, normEps: c.norm ? eps : undefined }),
        );
        const actual = await readF32(gpu, db, dstLen);
        const expected = new Float32Array(dstLen).fill(Number.NaN);
        const half = rotaryDim / 2;
        for (let t = 0; t < c.tokens; t++) {
          const pos = c.pos0 + t;
          for (let h = 0; h < c.heads; h++) {
            const from = srcOffset + t * srcTokenStride + h * srcHeadStride;
            let v = Array.from(src.subarray(from, from + c.headDim));
            if (c.norm) {
              const inv = 1 / Math.sqrt(v.reduce((s, x) => s + x * x, 0) / c.headDim + eps);
              v = v.map((x, d) => x * inv * normW[d]!);
            }
            const base = h * dst.headStride + (c.cache ? pos : t) * dst.tokenStride;
            for (let d = rotaryDim; d < c.headDim; d++) expected[base + d] = v[d]!; // partial rotary: the rest passes through
            for (let i = 0; i < half; i++) {
              // Angle in f32 as HF computes it (f32 inverse frequencies), cos/sin in f64.
              const angle = Math.fround(pos * inverseFrequencies(rope)[i]!);
              const [co, si] = c.rotate ? [Math.cos(angle), Math.sin(angle)] : [1, 0];
              expected[base + i] = v[i]! * co - v[i + half]! * si;
              expected[base + i + half] = v[i + half]! * co + v[i]! * si;
            }
          }
        }
        // NaN where nothing may be written: compare those positions by NaN-ness.
        for (let i = 0; i < dstLen; i++) expect(Number.isNaN(actual[i]!), `rope ${JSON.stringify(c)} slot ${i}`).toBe(Number.isNaN(expected[i]!));
        const written = [...expected.keys()].filter((i) => !Number.isNaN(expected[i]!));
        expectClose(Float32Array.from(written, (i) => actual[i]!), Float32Array.from(written, (i) => expected[i]!), 2e-6, 2e-5, `rope ${JSON.stringify(c)}`);
      }
    });
  });
}
