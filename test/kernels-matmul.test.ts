import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../src/gpu/gpu.ts';
import { gemvVariantName, MatmulKernel, type Activation, type MatmulOptions } from '../src/gpu/kernels/matmul.ts';
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
  /** Gated input: x holds gate | up (2 * cols per token) and the input is act(gate) * up. */
  activation?: Activation;
  /** The RMSNorm folded in (encodeNormed): the input is x * norm weight / sqrt(mean(x^2) + eps) per token. */
  normEps?: number;
}

const ACT: Record<Activation, (g: number) => number> = {
  none: (g) => g,
  silu: (g) => g / (1 + Math.exp(-g)),
  gelu_tanh: (g) => 0.5 * g * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (g + 0.044715 * g ** 3))),
};

/** Columns of x per token: the input, or gate | up. */
function xWidth(c: Case): number {
  return (c.activation ?? 'none') === 'none' ? c.cols : 2 * c.cols;
}

/** out[t, r] = [out0 +] sum_k W[r, k] xin[t, k] [+ b[r]] in f64 (xin: x, act(gate) * up, or rmsnorm(x) with weight g). */
function reference(c: Case, w: Float32Array, x: Float32Array, b: Float32Array, out0: Float32Array, g: Float32Array): Float32Array {
  const xStride = xWidth(c) + c.xPad;
  const outStride = c.rows + c.outPad;
  const act = ACT[c.activation ?? 'none'];
  const gated = (c.activation ?? 'none') !== 'none';
  const out = out0.slice();
  for (let t = 0; t < c.tokens; t++) {
    const row = c.xOffset + t * xStride;
    let ss = 0;
    for (let k = 0; k < c.cols; k++) ss += x[row + k]! ** 2;
    const scale = c.normEps === undefined ? 1 : 1 / Math.sqrt(ss / c.cols + c.normEps);
    for (let r = 0; r < c.rows; r++) {
      let s = 0;
      for (let k = 0; k < c.cols; k++) {
        const at = row + k;
        const xin = gated ? act(x[at]!) * x[at + c.cols]! : c.normEps === undefined ? x[at]! : x[at]! * scale * g[k]!;
        s += w[c.wOffset + r * c.cols + k]! * xin;
      }
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
    // The GPU default (whole workgroup on 4 rows, subgroups where the device has them, 64-row GEMM above
    // 4 tokens) and the CPU default (a row per invocation, GEMV for every count) on every case; other
    // variants and the gated inputs once, at adapter limits (SwiftShader compiles each pipeline slowly).
    let kernels: MatmulKernel[];
    const make = (o: MatmulOptions) => MatmulKernel.create(gpu, o);
    beforeAll(async () => {
      gpu = await createNodeGpu({ forceDefaultLimits });
      kernels = [
        await make({ gemv: { threads: 256, lanes: 256, rows: 4, subgroups: gpu.features.subgroups }, gemvMaxTokens: 4, gemmRowsPerThread: 4 }),
        await make({ gemv: { threads: 256, lanes: 1, rows: 1, subgroups: false }, gemvMaxTokens: Infinity }),
      ];
    }, 300_000);
    afterAll(() => gpu?.destroy());

    async function check(c: Case, seed: number, all = kernels): Promise<void> {
      for (const kernel of all) await checkWith(kernel, c, seed);
    }

    async function checkWith(kernel: MatmulKernel, c: Case, seed: number): Promise<void> {
      const random = rng(seed);
      const xStride = xWidth(c) + c.xPad;
      const outStride = c.rows + c.outPad;
      const wBits = randomBf16(c.wOffset + c.rows * c.cols + 3, random);
      // Gated inputs span silu/gelu's curved range and its saturation.
      const x = randomF32(c.xOffset + c.tokens * xStride + 5, random, c.activation ? 6 : 1);
      const b = randomF32(c.rows, random);
      const g = randomF32(c.cols, random, 2);
      const outLen = c.outOffset + c.tokens * outStride + 2;
      // Accumulation starts from random values; otherwise the output starts poisoned.
      const out0 = c.accumulate ? randomF32(outLen, random) : new Float32Array(outLen).fill(Number.NaN);
      const [xBuf, wBuf, bBuf, gBuf, outBuf] = await Promise.all([
        gpuData(gpu, x),
        gpuData(gpu, wBits),
        gpuData(gpu, b),
        gpuData(gpu, g),
        c.accumulate ? gpuData(gpu, out0) : poisoned(gpu, outLen),
      ]);
      // A folded norm reads x as the norm's input; the plain x binding (the norm's output in the forward) is poisoned.
      const normed = c.normEps !== undefined;
      const plainX = normed ? await poisoned(gpu, x.length) : xBuf;
      const norm = normed ? { x: xBuf, weight: gBuf } : undefined;
      const call = await kernel.bind(plainX, { binding: wBuf, offset: c.wOffset, rows: c.rows, cols: c.cols }, c.bias ? bBuf : undefined, outBuf, c.activation, norm);
      const args = { tokens: c.tokens, xOffset: c.xOffset, xStride, outOffset: c.outOffset, outStride, accumulate: c.accumulate };
      if (normed) expect(call.foldsNorm(c.tokens)).toBe(true);
      await runPass(gpu, (pass) => (normed ? call.encodeNormed(pass, args, c.normEps!) : call.encode(pass, args)));
      const actual = await readF32(gpu, outBuf, outLen);
      const expected = reference(c, bf16ToF32(wBits), x, b, out0, g);
      const w = [...Array(outLen).keys()].filter((i) => written(c, i));
      const bad = worstMismatch(w.map((i) => actual[i]!), w.map((i) => expected[i]!), 1e-5 * Math.sqrt(c.cols), 1e-5);
      expect(bad, `${JSON.stringify(c)} ${gemvVariantName(kernel.options.gemv)} max ${kernel.options.gemvMaxTokens}: at ${w[bad]} got ${actual[w[bad]!]} want ${expected[w[bad]!]}`).toBe(-1);
      // Elements outside the output rows keep their initial value (NaN stays NaN).
      for (let i = 0; i < outLen; i++) if (!written(c, i)) expect(Object.is(actual[i], out0[i]) || (Number.isNaN(actual[i]!) && Number.isNaN(out0[i]!))).toBe(true);
      call.destroy();
      for (const buf of new Set([xBuf, wBuf, bBuf, gBuf, outBuf, plainX])) buf.destroy();
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

    it.skipIf(forceDefaultLimits)('matches with other GEMV variants and 128-row GEMM tiles (row tails, large K, unaligned)', async () => {
      const sg = gpu.features.subgroups;
      const others = [
        await make({ gemv: { threads: 64, lanes: 64, rows: 3, subgroups: false }, gemvMaxTokens: 2, gemmRowsPerThread: 8 }),
        await make({ gemv: { threads: 128, lanes: 32, rows: 2, subgroups: false }, gemvMaxTokens: Infinity }),
        await make({ gemv: { threads: 64, lanes: 64, rows: 8, subgroups: sg }, gemvMaxTokens: Infinity }),
        await make({ gemv: { threads: 128, lanes: 4, rows: 5, subgroups: false }, gemvMaxTokens: Infinity }),
      ];
      let seed = 200;
      for (const [rows, cols, tokens, aligned] of [[13, 2056, 1, true], [131, 40, 3, true], [9, 1029, 2, false], [257, 96, 5, true], [70, 7, 6, false]] as const) {
        const c = { rows, cols, tokens, wOffset: aligned ? 8 : 3, xOffset: aligned ? 4 : 1, xPad: aligned ? 4 : 3, outOffset: 1, outPad: 2, bias: seed % 2 === 0, accumulate: seed % 3 === 0 };
        await check(c, seed++, others);
      }
    }, 300_000);

    it('folds the RMSNorm in front of a projection into the GEMV (encodeNormed), aligned and unaligned, every reduction', async () => {
      const sg = gpu.features.subgroups;
      const variants = forceDefaultLimits
        ? kernels
        : [...kernels, await make({ gemv: { threads: 128, lanes: 32, rows: 2, subgroups: false }, gemvMaxTokens: 4 }), await make({ gemv: { threads: 64, lanes: 64, rows: 8, subgroups: sg }, gemvMaxTokens: 4 })];
      let seed = 400;
      for (const [rows, cols, tokens, aligned] of [[3, 4, 1, false], [257, 96, 1, true], [13, 2056, 2, true], [9, 1028, 3, false], [70, 12, 4, false]] as const) {
        const c = { rows, cols, tokens, wOffset: aligned ? 8 : 3, xOffset: aligned ? 4 : 1, xPad: aligned ? 4 : 3, outOffset: 1, outPad: 2, bias: seed % 2 === 0, accumulate: seed % 3 === 0, normEps: 1e-5 };
        await check(c, seed++, variants);
      }
    }, 300_000);

    it('refuses a folded norm it cannot run: with an activation, odd columns, or past the GEMV token count', async () => {
      const [x, w] = await Promise.all([gpuData(gpu, new Float32Array(64)), gpuData(gpu, new Uint16Array(64))]);
      const norm = { x, weight: x };
      const view = (cols: number) => ({ binding: w, offset: 0, rows: 2, cols });
      await expect(kernels[0]!.bind(x, view(8), undefined, x, 'silu', norm)).rejects.toMatchObject({ code: 'bad-request' });
      await expect(kernels[0]!.bind(x, view(6), undefined, x, 'none', norm)).rejects.toMatchObject({ code: 'bad-request' });
      const call = await kernels[0]!.bind(x, view(8), undefined, x, 'none', norm);
      expect(call.foldsNorm(4)).toBe(true);
      expect(call.foldsNorm(5)).toBe(false);
      const plain = await kernels[0]!.bind(x, view(8), undefined, x);
      expect(plain.foldsNorm(1)).toBe(false);
      const encoder = gpu.device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      expect(() => call.encodeNormed(pass, { tokens: 5 }, 1e-5)).toThrow(expect.objectContaining({ code: 'internal' }));
      pass.end();
      for (const d of [call, plain, x, w]) d.destroy();
    });

    it.skipIf(forceDefaultLimits)('computes act(gate) * up on the fly (silu, gelu_tanh) in the GEMV and the GEMM', async () => {
      let seed = 300;
      for (const activation of ['silu', 'gelu_tanh'] as const) {
        for (const [rows, cols, tokens, aligned] of [[5, 24, 1, true], [67, 40, 7, true], [3, 13, 2, false]] as const) {
          const c = { rows, cols, tokens, wOffset: aligned ? 0 : 1, xOffset: aligned ? 8 : 2, xPad: aligned ? 4 : 1, outOffset: 0, outPad: 1, bias: false, accumulate: seed % 2 === 0, activation };
          await check(c, seed++, activation === 'silu' ? kernels : kernels.slice(0, 1));
        }
      }
    }, 300_000);
  });
}
