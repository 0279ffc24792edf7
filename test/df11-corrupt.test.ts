import { describe, expect, it } from 'vitest';
import { encodeUnit } from '../src/format/df11-encoder.ts';
import { decodeElements, decodeUnit, validateUnit } from '../src/format/df11-cpu-decoder.ts';
import type { Df11Unit } from '../src/format/df11-types.ts';
import { isDf11Error } from '../src/errors.ts';
import { cloneUnit } from '../src/testing/fuzz/mutate.ts';
import { rng } from '../src/testing/random-weights.ts';
import { trainedLike } from '../src/testing/fuzz/unit-cases.ts';

function encode(n: number, seed = 1): Df11Unit {
  return encodeUnit('u', [{ name: 'w', shape: [n], bits: trainedLike(n, seed) }]);
}



function expectCorrupt(f: () => unknown, pattern: RegExp): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(isDf11Error(err, 'corrupt-stream'), String(err)).toBe(true);
  expect((err as Error).message).toMatch(pattern);
}

const k = (u: Df11Unit): number => u.luts.length / 256;
/** Most frequent symbol: its code is reached early in any stream. */
function commonSymbol(u: Df11Unit): number {
  const lengths = u.luts.subarray((k(u) - 1) * 256);
  let best = -1;
  for (let s = 0; s < 240; s++) if (lengths[s] > 0 && (best < 0 || lengths[s] < lengths[best])) best = s;
  return best;
}

describe('corrupt DF11 units', () => {
  const base = encode(50_003);

  it('the undamaged unit decodes', () => {
    expect(decodeUnit(base).length).toBe(50_003);
  });

  it('zero code length for a reached symbol', () => {
    const u = cloneUnit(base);
    u.luts[(k(u) - 1) * 256 + commonSymbol(u)] = 0;
    expectCorrupt(() => decodeUnit(u), /code length 0/);
  });

  it('unfilled table entry of a one-symbol code', () => {
    const u = encodeUnit('u', [{ name: 'w', shape: [100], bits: new Uint16Array(100).fill(0x3c00) }]);
    expect(decodeUnit(u)[99]).toBe(0x3c00);
    const bad = cloneUnit(u);
    bad.encodedExponent[3] = 0xff;
    expectCorrupt(() => decodeUnit(bad), /code length 0/);
  });

  it('pointer to a table past the decode tables', () => {
    const u = cloneUnit(base);
    // Redirect every root entry of the common symbol to table k-1 (the length row).
    const s = commonSymbol(u);
    for (let i = 0; i < 256; i++) if (u.luts[i] === s) u.luts[i] = 256 - (k(u) - 1);
    expectCorrupt(() => decodeUnit(u), /past the \d+ decode tables/);
  });

  it('pointer chain deeper than 4 levels', () => {
    const u = cloneUnit(base);
    const luts = new Uint8Array(5 * 256);
    luts.fill(255, 0, 256); // root -> table 1
    luts.fill(254, 256, 512); // -> table 2
    luts.fill(253, 512, 768); // -> table 3
    luts.fill(255, 768, 1024); // -> table 1 again: a fifth lookup
    luts.set(u.luts.subarray((k(u) - 1) * 256), 4 * 256);
    u.luts = luts;
    expectCorrupt(() => decodeUnit(u), /deeper than 4 levels/);
  });

  it('stream truncated', () => {
    const u = cloneUnit(base);
    const nBytes = u.encodedExponent.length;
    expect(nBytes % 4096).toBeGreaterThan(64); // cutting 40 bytes keeps the block count
    u.encodedExponent = u.encodedExponent.slice(0, nBytes - 40);
    expectCorrupt(() => decodeUnit(u), /truncated|stream ends after/);
    // Cut by one byte: the last code runs past the end of the stream.
    const v = cloneUnit(base);
    v.encodedExponent = v.encodedExponent.slice(0, nBytes - 1);
    expectCorrupt(() => decodeUnit(v), /stream truncated/);
  });

  it('per-block counts disagree with output_positions', () => {
    const u = cloneUnit(base);
    u.outputPositions[1] += 1;
    expectCorrupt(() => decodeUnit(u), /block 0 holds/);
    const v = cloneUnit(base);
    v.outputPositions[2] -= 1;
    expectCorrupt(() => decodeUnit(v), /block 1 holds/);
    expectCorrupt(() => decodeElements(v, v.outputPositions[1], v.outputPositions[1] + 1), /block 1 holds/);
  });

  it('a gap that disagrees with where the previous code ended', () => {
    const u = cloneUnit(base);
    u.gaps[100] ^= 0x10; // thread 160 (bits 800..804 of the gap array)
    expectCorrupt(() => decodeUnit(u), /gap of thread 160/);
  });

  it('inconsistent array lengths', () => {
    const cases: Array<[string, (u: Df11Unit) => void, RegExp]> = [
      ['gaps', (u) => (u.gaps = u.gaps.slice(1)), /gaps has/],
      ['output_positions', (u) => (u.outputPositions = u.outputPositions.slice(1)), /output_positions has/],
      ['output_positions end', (u) => (u.outputPositions[u.outputPositions.length - 1] -= 1), /output_positions must run/],
      ['output_positions order', (u) => (u.outputPositions[1] = u.outputPositions[2] + 1), /decrease/],
      ['sign_mantissa', (u) => (u.signMantissa = u.signMantissa.slice(1)), /sign_mantissa has/],
      ['luts', (u) => (u.luts = u.luts.slice(1)), /luts has/],
      ['luts too short', (u) => (u.luts = u.luts.slice(0, 256)), /luts has/],
      ['split_positions', (u) => (u.splitPositions = [5]), /split_positions/],
      ['matrix shape', (u) => (u.matrices[0].shape = [7]), /does not continue/],
      ['stream too long', (u) => (u.encodedExponent = new Uint8Array(1 << 20)), /gaps has|cannot hold/],
    ];
    for (const [what, damage, pattern] of cases) {
      const u = cloneUnit(base);
      damage(u);
      expectCorrupt(() => validateUnit(u), pattern);
      expectCorrupt(() => decodeUnit(u), pattern);
      expect(what).toBeTruthy();
    }
  });

  it('random damage decodes or fails with corrupt-stream, never hangs or throws anything else', () => {
    const small = encode(20_011, 7);
    const r = rng(11);
    const fields = ['encodedExponent', 'gaps', 'luts', 'outputPositions'] as const;
    let failures = 0;
    for (let trial = 0; trial < 300; trial++) {
      const u = cloneUnit(small);
      const field = fields[trial % fields.length];
      const arr = u[field];
      for (let j = 0; j < 1 + (trial % 4); j++) {
        const i = Math.floor(r() * arr.length);
        arr[i] = field === 'outputPositions' ? Math.floor(r() * 30_000) : Math.floor(r() * 256);
      }
      try {
        decodeUnit(u);
        const a = Math.floor(r() * 20_011);
        decodeElements(u, a, Math.min(20_011, a + 5000));
      } catch (e) {
        expect(isDf11Error(e, 'corrupt-stream'), String(e)).toBe(true);
        failures++;
      }
    }
    expect(failures).toBeGreaterThan(100);
  });
});
