/**
 * Seeded synthetic BF16 weights for tests, benchmarks and test pages (no I/O, runs in Node and browsers).
 */

import { createRng } from '../engine/sampler.ts';

/** Deterministic PRNG (mulberry32, the sampler's): uniform in [0, 1). */
export const rng: (seed: number) => () => number = createRng;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** BF16 bits of x, rounded to nearest even (x finite). */
export function toBf16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** n weights drawn from N(0, std^2), as BF16 bits. */
export function normalBf16(n: number, seed: number, std = 0.02): Uint16Array {
  const r = rng(seed);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const g = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    out[i] = toBf16(g * std);
  }
  return out;
}

/** n N(0, std) BF16 weights made of one `block`-element draw repeated: fast for huge synthetic matrices, same distribution. */
export function tiledNormalBf16(n: number, seed: number, block: number): Uint16Array {
  const one = normalBf16(Math.min(n, block), seed);
  const out = new Uint16Array(n);
  for (let at = 0; at < n; at += one.length) out.set(one.subarray(0, Math.min(one.length, n - at)), at);
  return out;
}

/** n weights with random sign/mantissa whose exponent is drawn by `exponent(r)`. */
export function bf16WithExponents(n: number, seed: number, exponent: (r: () => number) => number): Uint16Array {
  const r = rng(seed);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = (Math.floor(r() * 0x10000) & 0x807f) | (exponent(r) << 7);
  return out;
}

/**
 * Exponents 100, 101, ... with counts F(1), F(2), ..., F(symbols) (Fibonacci), shuffled: the histogram
 * that makes Huffman codes as long as possible for its size (depth symbols - 1).
 */
export function fibonacciExponentBf16(symbols: number, seed: number): Uint16Array {
  const counts = [1, 1];
  while (counts.length < symbols) counts.push(counts[counts.length - 1] + counts[counts.length - 2]);
  const n = counts.slice(0, symbols).reduce((a, b) => a + b, 0);
  const r = rng(seed);
  const out = new Uint16Array(n);
  let o = 0;
  counts.slice(0, symbols).forEach((c, s) => {
    for (let i = 0; i < c; i++) out[o++] = (Math.floor(r() * 0x10000) & 0x807f) | ((100 + s) << 7);
  });
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  return out;
}
