// The kernel's fast-path tables (withLookupTables) against a plain walk of the unit's own LUTs: for every
// 8-bit prefix, `multi` holds the whole codes the prefix starts with (at most 3) and `ends` where the first
// and second of them end (the first's end is its length: the kernel's one-code decode reads it there), as the
// count's step at a window's end needs them.
import { describe, expect, it } from 'vitest';
import { encodeUnit } from '../src/format/df11-encoder.ts';
import { withLookupTables } from '../src/gpu/df11-decode.ts';
import { DF11_STREAM } from '../src/gpu/shader-constants.ts';
import { normalBf16 } from '../src/testing/random-weights.ts';

/** The codes of <= 8 bits that the byte `x` starts with, by the first LUT and the code-length table. */
function codesOf(luts: Uint8Array, nTables: number, x: number): Array<{ exponent: number; end: number }> {
  const lengths = luts.subarray((nTables - 1) * 256, nTables * 256);
  const codes: Array<{ exponent: number; end: number }> = [];
  let bits = 0;
  while (codes.length < 3) {
    const d = luts[(x << bits) & 0xff]!;
    const len = d < 240 ? lengths[d]! : 0;
    if (len === 0 || bits + len > 8) break;
    // the code is whole only if the table agrees for every value of the bits past the byte
    for (let rest = 0; rest < 1 << bits; rest++) if (luts[((x << bits) & 0xff) | rest] !== d) return codes;
    bits += len;
    codes.push({ exponent: d, end: bits });
  }
  return codes;
}

describe('DF11 fast-path lookup tables', () => {
  for (const [name, bits] of [['N(0, 0.02)', normalBf16(50_000, 11)], ['N(0, 1)', normalBf16(50_000, 12).map((b) => (b + 0x0500) & 0xffff)]] as const) {
    it(`multi and ends agree with the LUT walk, ${name} weights`, () => {
      const unit = encodeUnit('u', [{ name: 'w', shape: [bits.length], bits }]);
      const nTables = unit.luts.length / 256;
      const out = withLookupTables(unit.luts, nTables);
      const tables = new Uint32Array(out.slice(nTables * 256).buffer);
      expect(tables.length).toBe(512);
      let multiCodes = 0;
      for (let x = 0; x < 256; x++) {
        const codes = codesOf(unit.luts, nTables, x);
        const multi = tables[x]!;
        if (codes.length === 0) {
          expect(multi).toBe(DF11_STREAM.SLOW);
          continue;
        }
        multiCodes += codes.length;
        expect(multi >>> 28).toBe(codes.length);
        expect((multi >>> 24) & 15).toBe(codes.at(-1)!.end);
        codes.forEach((c, i) => expect((multi >>> (8 * i)) & 0xff).toBe(c.exponent));
        const ends = tables[256 + x]!;
        codes.slice(0, 2).forEach((c, i) => expect((ends >>> (4 * i)) & 15).toBe(c.end));
      }
      expect(multiCodes).toBeGreaterThan(256); // most prefixes hold more than one code
    });
  }
});
