import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../src/gpu/gpu.ts';
import { MatmulKernel } from '../src/gpu/kernels/matmul.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { bf16ToF32, gpuData, poisoned, randomBf16, randomF32, readF32, rng, runPass, worstMismatch } from './kernels-helpers.ts';

interface Case {
  rows: number;
  cols: number;
  tokens: number;
  wOffset: number;
  xOffset: number;
  xPad: number;
  outOffset: number;
  outPad: number;
  bias: boolean;
  accumulate: boolean;
}

/** out[t, r] = [out0 +] sum_k W[r, k] x[t, k] [+ b[r]] in f64. */
function reference(c: Case, w: Float32Array, x: Float32Array, b: Float32Array, out0: Float32Array): Float32Array {
  const xStride = c.cols + c.xPad;
  const outStride = c.rows + c.outPad;
  const out = out0.slice();
  for (let t = 0; t < c.tokens; t++) {
    for (let r = 0; r < c.rows; r++) {
      let s = 0;
      for (let k = 0; k < c.cols; k++) s += w[c.wOffset + r * c.cols + k]! * x[c.xOffset + t * xStride + k]!;
      if (c.bias) s += b[r]!;
      const o = c.outOffset + t * outStride + r;
      out[o] = c.accumulate ? out0[o]! + s : s;
    }
  }
  return out;
}

for (const forceDefaultLimits of [false, true]) {
  describe(`matmul (${forceDefaultLimits ? 'default limits' : 'adapter limits'})`, () => {
    let gpu: Gpu;
    // 32 lanes with GEMM above 4 tokens (GPU defaults); a row per thread with GEMV for every count (CPU defaults).
    let kernels: MatmulKernel[];
    beforeAll(async () => {
      gpu = await createNodeGpu({ forceDefaultLimits });
      kernels = [await MatmulKernel.create(gpu, { gemvLanes: 32, gemvMaxTokens: 4 }), await MatmulKernel.create(gpu, { gemvLanes: 1, gemvMaxTokens: Infinity })];
    });
    afterAll(() => gpu?.destroy());

    async function check(c: Case, seed: number): Promise<void> {
      for (const kernel of kernels) await checkWith(kernel, c, seed);
    }

    async function checkWith(kernel: MatmulKernel, c: Case, seed: number): Promise<void> {
      const random = rng(seed);
      const xStride = c.cols + c.xPad;
      const outStride = c.rows + c.outPad;
      const wBits = randomBf16(c.wOffset + c.rows * c.cols + 3, random);
      const x = randomF32(c.xOffset + c.tokens * xStride + 5, random);
      const b = randomF32(c.rows, random);
      const outLen = c.outOffset + c.tokens * outStride + 2;
      // Accumulation starts from random values; otherwise the output starts poisoned.
      const out0 = c.accumulate ? randomF32(outLen, random) : new Float32Array(outLen).fill(Number.NaN);
      const [xBuf, wBuf, bBuf, outBuf] = await Promise.all([
        gpuData(gpu, x),
        gpuData(gpu, wBits),
        gpuData(gpu, b),
        c.accumulate ? gpuData(gpu, out0) : poisoned(gpu, outLen),
      ]);
      const call = await kernel.bind(xBuf, { binding: wBuf, offset: c.wOffset, rows: c.rows, cols: c.cols }, c.bias ? bBuf : undefined, outBuf);
      await runPass(gpu, (pass) =>
        call.encode(pass, { tokens: c.tokens, xOffset: c.xOffset, xStride, outOffset: c.outOffset, outStride, accumulate: c.accumulate }),
      );
      const actual = await readF32(gpu, outBuf, outLen);
      const expected = reference(c, bf16ToF32(wBits), x, b, out0);
      const w = [...Array(outLen).keys()].filter((i) => written(c, i));
      const bad = worstMismatch(w.map((i) => actual[i]!), w.map((i) => expected[i]!), 1e-5 * Math.sqrt(c.cols), 1e-5);
      expect(bad, `${JSON.stringify(c)} lanes ${kernel.gemvLanes}: at ${w[bad]} got ${actual[w[bad]!]} want ${expected[w[bad]!]}`).toBe(-1);
      // Elements outside the output rows keep their initial value (NaN stays NaN).
      for (let i = 0; i < outLen; i++) if (!written(c, i)) expect(Object.is(actual[i], out0[i]) || (Number.isNaN(actual[i]!) && Number.isNaN(out0[i]!))).toBe(true);
      call.destroy();
      for (const buf of [xBuf, wBuf, bBuf, outBuf]) buf.destroy();
    }

    function written(c: Case, i: number): boolean {
      const rel = i - c.outOffset;
      const outStride = c.rows + c.outPad;
      return rel >= 0 && rel < c.tokens * outStride && rel % outStride < c.rows;
    }

    it('matches a CPU reference on awkward sizes (GEMV and GEMM paths, scalar and vector loads)', async () => {
      let seed = 1;
      for (const cols of [1, 7, 96, 385]) {
        for (const rows of [1, 3, 257]) {
          for (const tokens of [1, 3, 37]) {
            const aligned = cols % 8 === 0;
            await check(
              {
                rows,
                cols,
                tokens,
                wOffset: aligned ? 16 : 5,
                xOffset: aligned ? 4 : 3,
                xPad: aligned ? 4 : 1,
                outOffset: 2,
                outPad: 3,
                bias: seed % 2 === 0,
                accumulate: seed % 3 === 0,
              },
              seed++,
            );
          }
        }
      }
    });

    it('covers a tile-edge GEMM with bias and accumulation', async () => {
      await check({ rows: 130, cols: 64, tokens: 65, wOffset: 0, xOffset: 0, xPad: 0, outOffset: 0, outPad: 0, bias: true, accumulate: true }, 99);
    });
  });
}
