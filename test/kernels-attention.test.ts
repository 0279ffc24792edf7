import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../src/gpu/gpu.ts';
import { AttentionKernel, attentionPlan, attentionScratchBytes, attentionTiling, DECODE_SMALL_GROUP, DECODE_TARGET_WORKGROUPS, decodePlan, type AttentionArgs } from '../src/gpu/kernels/attention.ts';
import { RopeKernel } from '../src/gpu/kernels/rope.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { f16Value, gpuData, packF16, poisoned, randomF32, readF32, rng, runPass, worstMismatch } from './kernels-helpers.ts';

/** Softmax attention in f64: token t of `q` at position pos0 + t over keys lo..pos0 + t of its KV head. */
/** A kernel call of the test: every argument given, but the softmax scale optional (default 1 / sqrt(head_dim)). */
type AttentionCase = Required<Omit<AttentionArgs, 'scale'>> & Pick<AttentionArgs, 'scale'>;

function referenceAttention(a: AttentionCase, q: Float32Array, k: Float32Array, v: Float32Array): Float32Array {
  const { tokens, heads, kvHeads, headDim: hd, pos0, maxSeq, window } = a;
  const out = new Float32Array(tokens * heads * hd);
  for (let t = 0; t < tokens; t++) {
    const pos = pos0 + t;
    const lo = window > 0 ? Math.max(0, pos - window + 1) : 0;
    for (let h = 0; h < heads; h++) {
      const kvBase = Math.floor(h / (heads / kvHeads)) * maxSeq * hd;
      const qBase = (t * heads + h) * hd;
      const scores: number[] = [];
      for (let s = lo; s <= pos; s++) {
        let d = 0;
        for (let i = 0; i < hd; i++) d += q[qBase + i]! * k[kvBase + s * hd + i]!;
        scores.push(d * (a.scale ?? 1 / Math.sqrt(hd)));
      }
      const m = Math.max(...scores);
      const e = scores.map((x) => Math.exp(x - m));
      const sum = e.reduce((x, y) => x + y, 0);
      for (let i = 0; i < hd; i++) {
        let acc = 0;
        e.forEach((w, j) => (acc += w * v[kvBase + (lo + j) * hd + i]!));
        out[qBase + i] = acc / sum;
      }
    }
  }
  return out;
}

// Awkward sizes: head_dim 2..256 (80, odd multiples), GQA ratios 1, 3, 4, 7; decode (1 token) over contexts
// that cross split and tile boundaries; prefill blocks that hold parts of several tokens; windows.
const CASES: AttentionCase[] = [
  { tokens: 1, heads: 1, kvHeads: 1, headDim: 2, pos0: 0, maxSeq: 1, window: 0 },
  { tokens: 3, heads: 4, kvHeads: 2, headDim: 6, pos0: 2, maxSeq: 7, window: 0 },
  { tokens: 1, heads: 8, kvHeads: 2, headDim: 64, pos0: 1000, maxSeq: 1003, window: 0 },
  { tokens: 1, heads: 6, kvHeads: 2, headDim: 80, pos0: 777, maxSeq: 800, window: 0 },
  { tokens: 1, heads: 3, kvHeads: 3, headDim: 128, pos0: 130, maxSeq: 131, window: 0 },
  { tokens: 1, heads: 7, kvHeads: 1, headDim: 256, pos0: 300, maxSeq: 301, window: 0 },
  { tokens: 5, heads: 6, kvHeads: 2, headDim: 64, pos0: 60, maxSeq: 70, window: 0 },
  { tokens: 19, heads: 4, kvHeads: 1, headDim: 80, pos0: 0, maxSeq: 19, window: 0 },
  { tokens: 9, heads: 12, kvHeads: 3, headDim: 128, pos0: 517, maxSeq: 530, window: 0 },
  { tokens: 2, heads: 2, kvHeads: 1, headDim: 256, pos0: 129, maxSeq: 140, window: 0 },
  { tokens: 1, heads: 8, kvHeads: 2, headDim: 64, pos0: 1000, maxSeq: 1001, window: 100 },
  { tokens: 1, heads: 4, kvHeads: 4, headDim: 32, pos0: 20, maxSeq: 21, window: 64 },
  { tokens: 11, heads: 6, kvHeads: 2, headDim: 64, pos0: 300, maxSeq: 320, window: 37, scale: 0.3 },
  { tokens: 33, heads: 4, kvHeads: 1, headDim: 16, pos0: 0, maxSeq: 40, window: 1 },
];

// The decode path (attention_decode.wgsl, one token): head_dim multiples of 4 (f32) / 8 (f16) from 8 to
// 256 (1 to 16 score lanes per key with an f32 cache, 1 to 8 with f16), GQA ratios 1..8 (both pipelines: groups up to DECODE_SMALL_GROUP
// and larger), spans at split boundaries (64, 65, 129 keys: splits of 32), windows, chunks of several rounds (many KV heads:
// fewer splits wanted per head), and shapes it leaves to the general kernel (group 9 and 16, head_dim 12
// with an f16 cache, group * head_dim > 1024).
const DECODE_CASES: Array<AttentionCase> = [
  { tokens: 1, heads: 1, kvHeads: 1, headDim: 8, pos0: 0, maxSeq: 2, window: 0 },
  { tokens: 1, heads: 2, kvHeads: 1, headDim: 24, pos0: 63, maxSeq: 64, window: 0 },
  { tokens: 1, heads: 3, kvHeads: 1, headDim: 40, pos0: 64, maxSeq: 70, window: 0 },
  { tokens: 1, heads: 10, kvHeads: 2, headDim: 72, pos0: 128, maxSeq: 129, window: 0 },
  { tokens: 1, heads: 7, kvHeads: 1, headDim: 136, pos0: 200, maxSeq: 203, window: 0 },
  { tokens: 1, heads: 8, kvHeads: 2, headDim: 64, pos0: 1000, maxSeq: 1001, window: 65, scale: 0.0625 }, // a model scale (Gemma: query_pre_attn_scalar)
  { tokens: 1, heads: 8, kvHeads: 1, headDim: 128, pos0: 600, maxSeq: 640, window: 0 },
  { tokens: 1, heads: 12, kvHeads: 3, headDim: 256, pos0: 130, maxSeq: 131, window: 64 },
  { tokens: 1, heads: 256, kvHeads: 32, headDim: 8, pos0: 4100, maxSeq: 4101, window: 0 },
  { tokens: 1, heads: 9, kvHeads: 1, headDim: 16, pos0: 90, maxSeq: 91, window: 0 },
  { tokens: 1, heads: 16, kvHeads: 1, headDim: 8, pos0: 70, maxSeq: 71, window: 0 },
  { tokens: 1, heads: 4, kvHeads: 2, headDim: 12, pos0: 99, maxSeq: 100, window: 0 },
  { tokens: 1, heads: 8, kvHeads: 1, headDim: 256, pos0: 40, maxSeq: 41, window: 0 },
];

// Decode with few long splits (see the rounds test): groups 8, 2 and 3, lanes 2..8, a window.
const ROUND_CASES: Array<AttentionCase> = [
  { tokens: 1, heads: 8, kvHeads: 1, headDim: 128, pos0: 600, maxSeq: 601, window: 0 },
  { tokens: 1, heads: 4, kvHeads: 2, headDim: 64, pos0: 1000, maxSeq: 1003, window: 0 },
  { tokens: 1, heads: 6, kvHeads: 2, headDim: 80, pos0: 900, maxSeq: 901, window: 700 },
];

async function runCases(gpu: Gpu, kernel: AttentionKernel, kvDtype: 'f32' | 'f16', cases: Array<AttentionCase>, seed: number): Promise<boolean[]> {
  const random = rng(seed);
  const decodes: boolean[] = [];
  for (const c of cases) {
    const shape = { numHeads: c.heads, numKvHeads: c.kvHeads, headDim: c.headDim };
    const q = randomF32(c.tokens * c.heads * c.headDim, random, 2);
    const cacheLen = c.kvHeads * c.maxSeq * c.headDim;
    const [k, v] = [randomF32(cacheLen, random, 2), randomF32(cacheLen, random, 2)];
    const [kStored, vStored] = [k, v].map((x) => (kvDtype === 'f16' ? packF16(x) : { words: x, rounded: x }));
    const outLen = c.tokens * c.heads * c.headDim;
    const scratchBytes = attentionScratchBytes(shape, kernel.tiling, c.maxSeq, c.tokens, kernel.decodeTargetWorkgroups);
    const [qb, kb, vb, ob, sb] = await Promise.all([
      gpuData(gpu, q),
      gpuData(gpu, kStored!.words),
      gpuData(gpu, vStored!.words),
      poisoned(gpu, outLen),
      poisoned(gpu, scratchBytes / 4),
    ]);
    const call = await kernel.bind(qb, kb, vb, ob, sb);
    decodes.push(call.usesDecodePath(c));
    await runPass(gpu, (pass) => call.encode(pass, c));
    // The reference sees what the cache holds (f16-rounded K/V for an f16 cache): only f32 rounding differs.
    const expected = referenceAttention(c, q, kStored!.rounded, vStored!.rounded);
    const actual = await readF32(gpu, ob, outLen);
    const bad = worstMismatch(actual, expected, 2e-5, 2e-4);
    expect(bad, `${kvDtype} ${JSON.stringify(c)}: at ${bad} got ${actual[bad]} want ${expected[bad]}`).toBe(-1);
    call.destroy();
    for (const b of [qb, kb, vb, ob, sb]) b.destroy();
  }
  return decodes;
}

for (const forceDefaultLimits of [false, true]) {
  describe(`attention (${forceDefaultLimits ? 'default limits' : 'adapter limits'})`, () => {
    let gpu: Gpu;
    beforeAll(async () => {
      gpu = await createNodeGpu({ forceDefaultLimits });
    });
    afterAll(() => gpu?.destroy());

    for (const kvDtype of ['f32', 'f16'] as const) {
      it(`matches an f64 softmax reference with a ${kvDtype} cache (splits, tiles, GQA, windows)`, async () => {
        const kernel = await AttentionKernel.create(gpu, kvDtype);
        const plans = CASES.map((c) => attentionPlan({ numHeads: c.heads, numKvHeads: c.kvHeads, headDim: c.headDim }, kernel.tiling, c.tokens, c.pos0, c.window));
        await runCases(gpu, kernel, kvDtype, CASES, kvDtype === 'f32' ? 5 : 6);
        // The cases reach both paths: split (flash-decoding + combine) and one split, one and several row blocks.
        expect(plans.some((p) => p.splits > 1)).toBe(true);
        expect(plans.some((p) => p.splits === 1)).toBe(true);
        expect(plans.some((p) => p.rowBlocks > 1)).toBe(true);
      });
    }

    // Score lanes per key the cases reach, by cache dtype.
    const LANES = { f32: [1, 2, 4, 8, 16], f16: [1, 2, 4, 8] } as const;
    for (const kvDtype of ['f32', 'f16'] as const) {
      it(`the decode path matches the f64 reference with a ${kvDtype} cache (and falls back where it must)`, async () => {
        const kernel = await AttentionKernel.create(gpu, kvDtype);
        const decodes = await runCases(gpu, kernel, kvDtype, DECODE_CASES, kvDtype === 'f32' ? 8 : 9);
        // Every case but the last four runs the decode path (head_dim 12 does with an f32 cache).
        const fallback = DECODE_CASES.map((c, i) => i >= DECODE_CASES.length - 4 && !(kvDtype === 'f32' && c.headDim === 12));
        expect(decodes).toEqual(fallback.map((f) => !f));
        const plans = DECODE_CASES.slice(0, -4).map((c) => decodePlan({ numHeads: c.heads, numKvHeads: c.kvHeads, headDim: c.headDim }, kvDtype, c.pos0, c.window)!);
        expect(plans.some((p) => p.splits === 1)).toBe(true);
        expect(plans.some((p) => p.splits > 1)).toBe(true);
        expect(plans.some((p) => p.chunk > 256 / p.lanes)).toBe(true); // several rounds
        expect(new Set(plans.map((p) => p.lanes))).toEqual(new Set(LANES[kvDtype]));
        const groups = DECODE_CASES.slice(0, -4).map((c) => c.heads / c.kvHeads);
        expect(groups.some((g) => g <= DECODE_SMALL_GROUP) && groups.some((g) => g > DECODE_SMALL_GROUP)).toBe(true);
      });

      it(`the decode path's rounds (online softmax across them) match the reference with a ${kvDtype} cache`, async () => {
        // A target of 2 workgroups: one or two long splits per KV head, each of several rounds, the last partial.
        const kernel = await AttentionKernel.create(gpu, kvDtype, 2);
        const decodes = await runCases(gpu, kernel, kvDtype, ROUND_CASES, kvDtype === 'f32' ? 10 : 11);
        expect(decodes.every((d) => d)).toBe(true);
        const plans = ROUND_CASES.map((c) => decodePlan({ numHeads: c.heads, numKvHeads: c.kvHeads, headDim: c.headDim }, kvDtype, c.pos0, c.window, 2)!);
        for (const p of plans) expect(p.chunk).toBeGreaterThan(2 * (256 / p.lanes));
        expect(plans.some((p) => p.splits === 1) && plans.some((p) => p.splits > 1)).toBe(true);
      });
    }

    it('compiles only the decode pipelines of the groups it is created for, and refuses the others', async () => {
      const kernel = await AttentionKernel.create(gpu, 'f32', DECODE_TARGET_WORKGROUPS, [2]);
      const small = DECODE_CASES[1]!; // 2 heads over 1 KV head: the pipeline for groups up to DECODE_SMALL_GROUP
      const wide = DECODE_CASES[6]!; // 8 heads over 1 KV head: the other pipeline, not compiled
      expect(await runCases(gpu, kernel, 'f32', [small], 12)).toEqual([true]);
      await expect(runCases(gpu, kernel, 'f32', [wide], 13)).rejects.toMatchObject({ code: 'internal' });
    });

    it('rope writes the f16 cache as packed halves (keys and values)', async () => {
      const random = rng(7);
      const [tokens, kvHeads, headDim, pos0, maxSeq] = [3, 2, 10, 4, 9];
      const srcTokenStride = 4 * kvHeads * headDim; // q (2 kv heads' worth of query heads) | k | v
      const src = randomF32(tokens * srcTokenStride, random, 3);
      const f32Kernel = await RopeKernel.create(gpu, 'f32');
      const f16Kernel = await RopeKernel.create(gpu, 'f16');
      const table = new Float32Array((maxSeq * headDim) / 2 * 2);
      const args = { tokens, qHeads: 2 * kvHeads, kvHeads, headDim, pos0, maxSeq, srcTokenStride, kOffset: 2 * kvHeads * headDim, vOffset: 3 * kvHeads * headDim, rotate: false };
      const n = kvHeads * maxSeq * headDim;
      const [sb, tb, q, k32, v32, k16, v16] = await Promise.all([
        gpuData(gpu, src),
        gpuData(gpu, table),
        poisoned(gpu, tokens * 2 * kvHeads * headDim),
        poisoned(gpu, n),
        poisoned(gpu, n),
        poisoned(gpu, n / 2),
        poisoned(gpu, n / 2),
      ]);
      const [c32, c16] = await Promise.all([
        f32Kernel.bind({ src: sb, cosSin: tb, qNorm: tb, kNorm: tb, q, kCache: k32, vCache: v32 }),
        f16Kernel.bind({ src: sb, cosSin: tb, qNorm: tb, kNorm: tb, q, kCache: k16, vCache: v16 }),
      ]);
      await runPass(gpu, (pass) => {
        c32.encode(pass, args);
        c16.encode(pass, args);
      });
      for (const [full32, packed] of [[k32, k16], [v32, v16]] as const) {
        const full = await readF32(gpu, full32, n);
        const words = new Uint32Array((await readF32(gpu, packed, n / 2)).buffer);
        for (let i = 0; i < n; i++) {
          const half = (words[i >> 1]! >>> ((i & 1) * 16)) & 0xffff;
          if (Number.isNaN(full[i]!)) {
            expect(words[i >> 1], `slot ${i} is not written`).toBe(0x7fc00000);
          } else {
            // pack2x16float may round either way: within one f16 ulp (2^-10 relative) of the f32 value.
            expect(Math.abs(f16Value(half) - full[i]!), `slot ${i}`).toBeLessThanOrEqual(Math.abs(full[i]!) * 2 ** -10 + 2 ** -24);
          }
        }
      }
    });
  });
}

describe('attention plan', () => {
  it('decode: splits up to the workgroup target, whole rounds past one round, limits-independent, fallback for large groups', () => {
    const shape = { numHeads: 32, numKvHeads: 8, headDim: 64 };
    // 4k: the target's 32 splits per KV head of 128 keys; 16k: 512 keys each (four rounds of 128 keys, f16, or eight of 64, f32).
    // head_dim 64: 8 K words a row (f16) or 16 (f32), at most 4 per lane: two lanes (f16), four (f32).
    expect(decodePlan(shape, 'f16', 4095, 0)).toEqual({ splits: DECODE_TARGET_WORKGROUPS / shape.numKvHeads, chunk: 128, lanes: 2 });
    expect(decodePlan(shape, 'f32', 4095, 0)).toEqual({ splits: 32, chunk: 128, lanes: 4 });
    expect(decodePlan(shape, 'f16', 16383, 0)).toEqual({ splits: 32, chunk: 512, lanes: 2 });
    expect(decodePlan(shape, 'f32', 16383, 0)).toEqual({ splits: 32, chunk: 512, lanes: 4 });
    expect(decodePlan(shape, 'f16', 16383, 0, 2048)).toEqual({ splits: 256, chunk: 64, lanes: 2 });
    // Past one round, chunks are whole rounds; head_dim 128: four lanes (f16), eight (f32).
    expect(decodePlan(shape, 'f16', 32767, 0, 128)).toEqual({ splits: 16, chunk: 2048, lanes: 2 });
    expect(decodePlan({ ...shape, headDim: 128 }, 'f16', 40000, 0)).toEqual({ splits: 32, chunk: 1280, lanes: 4 });
    expect(decodePlan({ ...shape, headDim: 128 }, 'f32', 100, 0)).toEqual({ splits: 4, chunk: 32, lanes: 8 });
    for (const kv of ['f32', 'f16'] as const) {
      const p = decodePlan(shape, kv, 16383, 0)!;
      expect(p.splits * p.chunk).toBeGreaterThanOrEqual(16384);
      expect((p.splits - 1) * p.chunk).toBeLessThan(16384);
    }
    expect(decodePlan(shape, 'f32', 31, 0)).toEqual({ splits: 1, chunk: 32, lanes: 4 });
    expect(decodePlan(shape, 'f32', 100000, 128)!.splits).toBe(4); // a window of 128 keys: splits of 32
    expect(decodePlan({ numHeads: 72, numKvHeads: 8, headDim: 64 }, 'f32', 100, 0)).toBeNull();
    expect(decodePlan({ numHeads: 8, numKvHeads: 1, headDim: 256 }, 'f32', 100, 0)).toBeNull();
    // The scratch covers every decode step of the context.
    const tiling = attentionTiling(16384);
    for (const ctx of [100, 5000, 16384, 70000, 300000]) {
      const bytes = attentionScratchBytes(shape, tiling, ctx, 1);
      for (const pos of [0, 63, 64, 1000, 16383, 16384, 20000, 69999, 299999]) {
        if (pos >= ctx) continue;
        const p = decodePlan(shape, 'f16', pos, 0)!;
        if (p.splits > 1) expect(shape.numHeads * p.splits * (2 + shape.headDim) * 4).toBeLessThanOrEqual(bytes);
      }
    }
  });

  const tiling = attentionTiling(16384);
  const shape = { numHeads: 32, numKvHeads: 8, headDim: 64 };

  it('splits long contexts across many workgroups and short ones not at all', () => {
    expect(attentionPlan(shape, tiling, 1, 10, 0).splits).toBe(1);
    const long = attentionPlan(shape, tiling, 1, 16383, 0);
    expect(long.splits * long.rowBlocks * shape.numKvHeads).toBeGreaterThanOrEqual(512);
    expect(long.splits * long.chunk).toBeGreaterThanOrEqual(16384);
    expect((long.splits - 1) * long.chunk).toBeLessThan(16384);
    // A window bounds the keys, and so the splits.
    expect(attentionPlan(shape, tiling, 1, 16383, 128).splits).toBeLessThanOrEqual(3);
  });

  it('sizes the scratch for the worst step of a context and grows with it', () => {
    const a = attentionScratchBytes(shape, tiling, 4096, 64);
    const b = attentionScratchBytes(shape, tiling, 32768, 64);
    expect(a).toBeGreaterThan(16);
    expect(b).toBeGreaterThanOrEqual(a);
    for (const tokens of [1, 7, 64]) {
      const p = attentionPlan(shape, tiling, tokens, 32768 - tokens, 0);
      expect(shape.numHeads * tokens * p.splits * (2 + shape.headDim) * 4).toBeLessThanOrEqual(b);
    }
  });
});
