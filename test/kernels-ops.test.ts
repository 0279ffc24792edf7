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

    it('rope (q | k | v heads: norm, rotate, queries out, keys and values into the cache) matches a CPU reference', async () => {
      const kernel = await RopeKernel.create(gpu);
      const random = rng(4);
      const cases = [
        { tokens: 1, qHeads: 1, kvHeads: 1, headDim: 2, pos0: 0, maxSeq: 4, norm: false, rotate: true },
        { tokens: 3, qHeads: 4, kvHeads: 2, headDim: 16, rotaryDim: 12, pos0: 5, maxSeq: 9, norm: false, rotate: true },
        { tokens: 2, qHeads: 3, kvHeads: 3, headDim: 64, rotaryDim: 16, pos0: 1, maxSeq: 4, norm: true, rotate: true },
        { tokens: 3, qHeads: 5, kvHeads: 1, headDim: 6, pos0: 4, maxSeq: 9, norm: true, rotate: true },
        { tokens: 7, qHeads: 6, kvHeads: 2, headDim: 64, pos0: 11, maxSeq: 20, norm: true, rotate: true },
        { tokens: 2, qHeads: 2, kvHeads: 1, headDim: 256, pos0: 1, maxSeq: 5, norm: false, rotate: false },
        { tokens: 4, qHeads: 2, kvHeads: 2, headDim: 130, pos0: 300, maxSeq: 310, norm: false, rotate: true },
        // Qwen3.5's gated q_proj: each head's query followed by its gate (heads 2 head_dim apart).
        { tokens: 3, qHeads: 4, kvHeads: 2, headDim: 16, rotaryDim: 4, pos0: 2, maxSeq: 6, norm: true, rotate: true, qHeadStride: 32 },
      ];
      for (const c of cases) {
        const hd = c.headDim;
        const qHeadStride = c.qHeadStride ?? hd;
        const kOffset = c.qHeads * qHeadStride;
        const vOffset = kOffset + c.kvHeads * hd;
        const srcTokenStride = vOffset + c.kvHeads * hd + 5;
        const src = randomF32(c.tokens * srcTokenStride, random, 2);
        const [qNormW, kNormW] = [randomF32(hd, random), randomF32(hd, random)];
        const rotaryDim = c.rotaryDim ?? hd;
        const rope = { theta: 10000, type: 'default' as const, rotaryDim };
        const table = ropeTable(rope, c.maxSeq);
        const qLen = c.tokens * c.qHeads * hd;
        const cacheLen = c.kvHeads * c.maxSeq * hd;
        const [sb, tb, qn, kn, qb, kb, vb] = await Promise.all([
          gpuData(gpu, src),
          gpuData(gpu, table),
          gpuData(gpu, qNormW),
          gpuData(gpu, kNormW),
          poisoned(gpu, qLen),
          poisoned(gpu, cacheLen),
          poisoned(gpu, cacheLen),
        ]);
        const call = await kernel.bind({ src: sb, cosSin: tb, qNorm: qn, kNorm: kn, q: qb, kCache: kb, vCache: vb });
        const eps = 1e-6;
        const args = { tokens: c.tokens, qHeads: c.qHeads, kvHeads: c.kvHeads, headDim: hd, pos0: c.pos0, maxSeq: c.maxSeq, srcTokenStride, qHeadStride, kOffset, vOffset };
        await runPass(gpu, (pass) => call.encode(pass, { ...args, rotate: c.rotate, rotaryDim: c.rotaryDim, normEps: c.norm ? eps : undefined }));
        const expected = { q: new Float32Array(qLen).fill(Number.NaN), k: new Float32Array(cacheLen).fill(Number.NaN), v: new Float32Array(cacheLen).fill(Number.NaN) };
        const half = rotaryDim / 2;
        /** One head of token t from src at `from`, [normed with `w`], [rotated], written to `out` at `base`. */
        const head = (t: number, from: number, w: Float32Array | null, rotate: boolean, out: Float32Array, base: number) => {
          const pos = c.pos0 + t;
          let v = Array.from(src.subarray(from, from + hd));
          if (w) {
            const inv = 1 / Math.sqrt(v.reduce((s, x) => s + x * x, 0) / hd + eps);
            v = v.map((x, d) => x * inv * w[d]!);
          }
          const rd = rotate ? rotaryDim : 0;
          for (let d = rd; d < hd; d++) out[base + d] = v[d]!; // partial rotary: the rest passes through
          for (let i = 0; i < rd / 2; i++) {
            // Angle in f32 as HF computes it (f32 inverse frequencies), cos/sin in f64.
            const angle = Math.fround(pos * inverseFrequencies(rope)[i]!);
            out[base + i] = v[i]! * Math.cos(angle) - v[i + half]! * Math.sin(angle);
            out[base + i + half] = v[i + half]! * Math.cos(angle) + v[i]! * Math.sin(angle);
          }
        };
        for (let t = 0; t < c.tokens; t++) {
          const row = t * srcTokenStride;
          for (let h = 0; h < c.qHeads; h++) head(t, row + h * qHeadStride, c.norm ? qNormW : null, c.rotate, expected.q, (t * c.qHeads + h) * hd);
          for (let h = 0; h < c.kvHeads; h++) {
            const slot = (h * c.maxSeq + c.pos0 + t) * hd;
            head(t, row + kOffset + h * hd, c.norm ? kNormW : null, c.rotate, expected.k, slot);
            head(t, row + vOffset + h * hd, null, false, expected.v, slot);
          }
        }
        for (const [name, buffer, len] of [['q', qb, qLen], ['k', kb, cacheLen], ['v', vb, cacheLen]] as const) {
          const actual = await readF32(gpu, buffer, len);
          const want = expected[name];
          // NaN where nothing may be written: compare those positions by NaN-ness.
          for (let i = 0; i < len; i++) expect(Number.isNaN(actual[i]!), `rope ${name} ${JSON.stringify(c)} slot ${i}`).toBe(Number.isNaN(want[i]!));
          const written = [...want.keys()].filter((i) => !Number.isNaN(want[i]!));
          expectClose(Float32Array.from(written, (i) => actual[i]!), Float32Array.from(written, (i) => want[i]!), 2e-6, 2e-5, `rope ${name} ${JSON.stringify(c)}`);
        }
        call.destroy();
        for (const b of [sb, tb, qn, kn, qb, kb, vb]) b.destroy();
      }
    });
  });
}
