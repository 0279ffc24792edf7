/**
 * DF11 unit cases shared by the CPU and GPU fuzz targets: a small multi-block base unit, corrupted per
 * seed, and the classification of what the decoders make of it.
 */
import { isDf11Error } from '../../errors.ts';
import { decodeUnit } from '../../format/df11-cpu-decoder.ts';
import { encodeUnit } from '../../format/df11-encoder.ts';
import type { Df11Unit } from '../../format/df11-types.ts';
import { firstMismatch } from '../compare.ts';
import { rng } from '../random-weights.ts';
import { corruptUnit, int } from './mutate.ts';

/** Weights with a geometric exponent distribution around 120 (like trained weights), sign/mantissa random. */
export function trainedLike(n: number, seed: number): Uint16Array {
  const r = rng(seed);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    let e = 122;
    while (e > 90 && r() < 0.55) e--;
    out[i] = ((r() * 0x10000) & 0x807f) | (e << 7);
  }
  return out;
}

/** Base units: 1 to 4 blocks, two matrices (odd sizes), different codes. */
export function baseUnits(): Df11Unit[] {
  return [3_001, 11_111, 24_007].map((n, i) =>
    encodeUnit(`fuzz${i}`, [
      { name: 'a', shape: [n], bits: trainedLike(n, 100 + i) },
      { name: 'b', shape: [7, 13], bits: trainedLike(91, 200 + i) },
    ]),
  );
}

/** The corrupt unit of a seed, over one of the base units. */
export function unitCase(bases: Df11Unit[], seed: number): { base: Df11Unit; unit: Df11Unit } {
  const r = rng(seed);
  const base = bases[int(r, bases.length)]!;
  return { base, unit: corruptUnit(r, base) };
}

export type Decoded = { ok: true; bits: Uint16Array } | { ok: false; code: string };

/** What the CPU decoder makes of a unit: its bits or the Df11Error code (anything else propagates). */
export function cpuDecode(unit: Df11Unit): Decoded {
  try {
    return { ok: true, bits: decodeUnit(unit) };
  } catch (e) {
    if (isDf11Error(e)) return { ok: false, code: e.code };
    throw e;
  }
}

/** 'typed' (rejected), 'identical' (the base's bits), or 'silent' (other bits, accepted). */
export function classifyDecoded(d: Decoded, base: Uint16Array): 'typed' | 'identical' | 'silent' {
  if (!d.ok) return 'typed';
  return firstMismatch(d.bits, base) === -1 ? 'identical' : 'silent';
}

/** Whether two decoders agree: both reject with corrupt-stream, or both give the same bits. */
export function sameDecode(a: Decoded, b: Decoded): boolean {
  if (!a.ok || !b.ok) return !a.ok && !b.ok && a.code === b.code;
  return firstMismatch(a.bits, b.bits) === -1;
}
