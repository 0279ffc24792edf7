/**
 * Seeded mutations for the fuzzer: bytes (flip, set, insert, delete, truncate, extend), JSON values
 * (replace with hostile values of any type, delete keys, duplicate), and DF11 units (damage one of the
 * arrays). Every mutator takes the case's PRNG, so a (target, seed) pair always builds the same input.
 */
import type { Df11Unit } from '../../format/df11-types.ts';

export type Rng = () => number;

export const int = (r: Rng, n: number): number => Math.floor(r() * n);
export const pick = <T>(r: Rng, items: readonly T[]): T => items[int(r, items.length)]!;

/** Numbers that break size arithmetic, and values of every JSON type. */
const HOSTILE_NUMBERS = [0, -1, 1, 2, 3, 7, 255, 256, 4096, 65535, 65536, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 1e308, -0, 0.5, 1e-300];
const HOSTILE_VALUES: unknown[] = [null, true, false, '', '.', '..', '../x.safetensors', '/etc/passwd', 'a'.repeat(300), [], [1], {}, { a: 1 }];

export function hostileValue(r: Rng, like?: unknown): unknown {
  const x = r();
  if (typeof like === 'number' && x < 0.5) return like + pick(r, [-1, 1, 2, -2]) * (x < 0.25 ? 1 : like);
  if (x < 0.75) return pick(r, HOSTILE_NUMBERS);
  return structuredClone(pick(r, HOSTILE_VALUES));
}

/** Paths to every value in a JSON document (object keys and array indices). */
function paths(doc: unknown, prefix: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  if (typeof doc !== 'object' || doc === null) return out;
  for (const [k, v] of Object.entries(doc)) {
    const p = [...prefix, Array.isArray(doc) ? Number(k) : k];
    out.push(p);
    if (out.length < 5000) paths(v, p, out);
  }
  return out;
}

/** 1..3 structural edits of a JSON document: replace a value, delete a key, or rename one. */
export function mutateJson(r: Rng, doc: unknown): unknown {
  const copy = structuredClone(doc) as Record<string, unknown>;
  const edits = 1 + int(r, 3);
  for (let e = 0; e < edits; e++) {
    const all = paths(copy);
    if (all.length === 0) return hostileValue(r);
    const path = pick(r, all);
    let parent = copy as Record<string | number, unknown>;
    for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
    const key = path[path.length - 1]!;
    const op = r();
    if (op < 0.6) parent[key] = hostileValue(r, parent[key]);
    else if (op < 0.8 && !Array.isArray(parent)) delete parent[key];
    else if (!Array.isArray(parent)) {
      parent[`${String(key)}${pick(r, ['', '_', '.', '/..'])}x`] = parent[key];
      delete parent[key];
    }
  }
  return copy;
}

/** 1..4 byte-level edits inside [from, to) of `bytes` (to clamped), plus an occasional cut or extension. */
export function mutateBytes(r: Rng, bytes: Uint8Array, from = 0, to = bytes.length): Uint8Array {
  let out: Uint8Array = bytes.slice();
  const edits = 1 + int(r, 4);
  for (let e = 0; e < edits; e++) {
    const end = Math.min(to, out.length);
    if (end <= from) break;
    const at = from + int(r, end - from);
    const op = r();
    if (op < 0.4) out[at] ^= 1 << int(r, 8);
    else if (op < 0.6) out[at] = pick(r, [0, 0xff, 0x7f, 0x80, 0x22, 0x7b, 0x7d, 0x2c, 0x30 + int(r, 10)]);
    else if (op < 0.7) out = concat(out.subarray(0, at), new Uint8Array([int(r, 256)]), out.subarray(at));
    else if (op < 0.8) out = concat(out.subarray(0, at), out.subarray(at + 1 + int(r, 8)));
    else if (op < 0.9) out = out.slice(0, at);
    else out = concat(out, new Uint8Array(1 + int(r, 16)));
  }
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A deep copy whose arrays can be damaged without touching the original. */
export function cloneUnit(u: Df11Unit): Df11Unit {
  return {
    ...u,
    encodedExponent: u.encodedExponent.slice(),
    signMantissa: u.signMantissa.slice(),
    luts: u.luts.slice(),
    gaps: u.gaps.slice(),
    outputPositions: u.outputPositions.slice(),
    splitPositions: [...u.splitPositions],
    matrices: u.matrices.map((m) => ({ ...m, shape: [...m.shape] })),
  };
}

/**
 * A unit with 1..3 kinds of damage: bit flips or byte writes in the stream, gaps, LUTs or sign/mantissa,
 * an output position moved, the stream or gaps cut short. Mostly in-place damage (the arrays keep their
 * lengths), so the structural checks pass and the decoders' stream checks are exercised.
 */
export function corruptUnit(r: Rng, base: Df11Unit): Df11Unit {
  const u = cloneUnit(base);
  const kinds = 1 + int(r, 3);
  for (let i = 0; i < kinds; i++) {
    const which = r();
    const flip = (a: Uint8Array): void => {
      if (a.length === 0) return;
      const at = int(r, a.length);
      if (r() < 0.7) a[at] ^= 1 << int(r, 8);
      else a[at] = int(r, 256);
    };
    if (which < 0.3) flip(u.encodedExponent);
    else if (which < 0.55) flip(u.gaps);
    else if (which < 0.7) flip(u.luts);
    else if (which < 0.75) flip(u.signMantissa);
    else if (which < 0.9) {
      const op = u.outputPositions;
      if (op.length > 2) op[1 + int(r, op.length - 2)] += pick(r, [-1, 1, -7, 64]);
    } else if (which < 0.97) {
      u.encodedExponent = u.encodedExponent.slice(0, Math.max(0, u.encodedExponent.length - 1 - int(r, 64)));
    } else {
      u.gaps = u.gaps.slice(0, Math.max(0, u.gaps.length - 1 - int(r, 8)));
    }
  }
  return u;
}
