import { describe, expect, it } from 'vitest';
import { encodeUnit, type MatrixInput } from '../src/format/df11-encoder.ts';
import { decodeElements, decodeUnit, validateUnit } from '../src/format/df11-cpu-decoder.ts';
import { BYTES_PER_BLOCK, MAX_CODE_LENGTH, type Df11Unit } from '../src/format/df11-types.ts';
import { buildLuts, buildUnitCode, canonicalCodes, limitedCodeLengths } from '../src/format/huffman.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import { openModel } from '../src/format/model-reader.ts';
import { asUint16 } from '../src/format/safetensors.ts';
import { isDf11Error } from '../src/errors.ts';
import { planUnits } from '../src/format/compress-model.ts';
import { defaultPattern } from '../src/format/config.ts';
import { unitStoredBytes } from '../src/format/df11-writer.ts';
import { firstMismatch } from '../src/testing/compare.ts';
import { concatBits, oneMatrix } from '../src/testing/matrix-inputs.ts';
import { bf16WithExponents, normalBf16, rng, toBf16 } from '../src/testing/random-weights.ts';

/** Exponent i with probability ~ 2^-(i+1) over 40 symbols: Huffman wants codes up to ~n bits long. */
function skewedExponent(r: () => number): number {
  let e = 0;
  while (e < 39 && r() < 0.5) e++;
  return e * 6;
}

function roundTrip(matrices: MatrixInput[]): Df11Unit {
  const unit = encodeUnit('unit', matrices);
  validateUnit(unit);
  expect(firstMismatch(decodeUnit(unit), concatBits(matrices))).toBe(-1);
  return unit;
}

describe('huffman', () => {
  it('caps Fibonacci frequencies at 32 bits with a complete prefix code', () => {
    const counts = new Uint32Array(256);
    let a = 1;
    let b = 1;
    for (let s = 0; s < 45; s++) {
      counts[s * 5] = a;
      [a, b] = [b, Math.min(a + b, 0xffffffff)];
    }
    const free = limitedCodeLengths(counts, 64);
    expect(Math.max(...free)).toBeGreaterThan(32);
    const lengths = limitedCodeLengths(counts, MAX_CODE_LENGTH);
    expect(Math.max(...lengths)).toBe(MAX_CODE_LENGTH);
    let kraft = 0;
    for (let s = 0; s < 256; s++) if (lengths[s]) kraft += 2 ** -lengths[s];
    expect(kraft).toBe(1);
    const code = buildUnitCode(counts, 'fib');
    expect(code.luts.length / 256).toBeGreaterThanOrEqual(5); // 4 table levels + lengths
  });

  it('lowers the cap when a code would need more than 16 child tables', () => {
    // 64 symbols of length 9 need 32 second-level tables at a 32-bit cap.
    const counts = new Uint32Array(256);
    for (let s = 0; s < 64; s++) counts[s] = 1;
    for (let s = 64; s < 64 + 96; s++) counts[s] = 4;
    for (let s = 160; s < 176; s++) counts[s] = 8;
    const lengths = limitedCodeLengths(counts, 32);
    expect(buildLuts({ lengths, codes: canonicalCodes(lengths) })).toBeNull();
    const code = buildUnitCode(counts, 'wide');
    expect(code.luts.length / 256).toBeLessThanOrEqual(18);
    const bits = bf16WithExponents(20000, 5, (r) => {
      const x = r() * (64 + 96 * 4 + 16 * 8);
      return x < 64 ? Math.floor(x) : x < 448 ? 64 + Math.floor((x - 64) / 4) : 160 + Math.floor((x - 448) / 8);
    });
    roundTrip(oneMatrix(bits));
  });
});

describe('encode/decode round trip', () => {
  for (const n of [0, 1, 2, 511, 4095, 4097, 1_000_003]) {
    it(`N(0, 0.02) weights, n = ${n}`, () => {
      roundTrip(oneMatrix(normalBf16(n, n + 1)));
    });
  }

  it('several matrices, split positions and shapes', () => {
    const ms: MatrixInput[] = [
      { name: 'a', shape: [3, 5], bits: normalBf16(15, 1) },
      { name: 'b', shape: [7, 1000], bits: normalBf16(7000, 2, 0.5) },
      { name: 'c', shape: [1], bits: normalBf16(1, 3) },
    ];
    const unit = roundTrip(ms);
    expect(unit.splitPositions).toEqual([15, 7015]);
    expect(unit.matrices.map((m) => [m.name, m.offset, m.size])).toEqual([
      ['a', 0, 15],
      ['b', 15, 7000],
      ['c', 7015, 1],
    ]);
  });

  for (const n of [1, 4097, 100_003]) {
    it(`all one exponent, n = ${n}`, () => {
      const unit = roundTrip(oneMatrix(bf16WithExponents(n, n, () => 120)));
      expect(unit.encodedExponent.length).toBe(Math.ceil(n / 8));
    });
    it(`uniform exponents 0..239, n = ${n}`, () => {
      roundTrip(oneMatrix(bf16WithExponents(n, n + 7, (r) => Math.floor(r() * 240))));
    });
  }

  it('skewed exponents give long codes', () => {
    const bits = bf16WithExponents(1_000_003, 9, skewedExponent);
    const unit = roundTrip(oneMatrix(bits));
    const k = unit.luts.length / 256;
    const lengths = unit.luts.subarray((k - 1) * 256);
    expect(Math.max(...lengths)).toBeGreaterThanOrEqual(17);
  });

  it('Fibonacci exponent counts: Huffman wants 33 bits, the stream holds 32-bit codes', () => {
    // 34 symbols with counts F(1)..F(34) (14.9M weights): unlimited Huffman depth 33.
    const counts: number[] = [1, 1];
    while (counts.length < 34) counts.push(counts[counts.length - 1] + counts[counts.length - 2]);
    expect(Math.max(...limitedCodeLengths(counts, 64))).toBe(33);
    const n = counts.reduce((a, b) => a + b, 0);
    const bits = new Uint16Array(n);
    let o = 0;
    counts.forEach((c, s) => {
      bits.fill((100 + s) << 7, o, o + c);
      o += c;
    });
    const r = rng(5);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      const t = bits[i];
      bits[i] = bits[j] | (i & 0x807f); // vary sign/mantissa too
      bits[j] = t;
    }
    const unit = roundTrip(oneMatrix(bits));
    const k = unit.luts.length / 256;
    expect(Math.max(...unit.luts.subarray((k - 1) * 256))).toBe(MAX_CODE_LENGTH);
    expect(k).toBe(5); // root + 3 child levels + lengths
  });

  it('a last code that starts in one block and ends in the next (no code starts in the last block)', () => {
    // Exponent 120 (1-bit code) plus rare exponents with long codes; the longest is placed last and
    // made to start at bit 32760, so it runs into block 1 where no code starts.
    const rare = [100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111];
    const counts = new Uint32Array(256);
    rare.forEach((e, i) => (counts[e] = 2 ** Math.max(0, i - 1)));
    let lengths: Uint8Array = new Uint8Array(256);
    let common = 30_000;
    for (let iter = 0; iter < 10; iter++) {
      counts[120] = common;
      lengths = limitedCodeLengths(counts, MAX_CODE_LENGTH);
      let rareBits = 0;
      for (const e of rare) rareBits += counts[e] * lengths[e];
      common = 32_760 + lengths[rare[0]] - rareBits; // common codes are 1 bit
    }
    counts[120] = common;
    expect(lengths[120]).toBe(1);
    expect(lengths[rare[0]]).toBeGreaterThan(8);
    const sequence: number[] = [];
    for (const e of rare) for (let i = 0; i < counts[e]; i++) if (e !== rare[0]) sequence.push(e);
    for (let i = 0; i < common; i++) sequence.push(120);
    sequence.push(rare[0]);
    const r = rng(77);
    const bits = Uint16Array.from(sequence, (e) => ((r() * 0x10000) & 0x807f) | (e << 7));
    const unit = roundTrip(oneMatrix(bits));
    expect(unit.outputPositions.length).toBe(3);
    expect(unit.outputPositions[1]).toBe(bits.length);
    expect(firstMismatch(decodeElements(unit, bits.length - 2, bits.length), bits.subarray(bits.length - 2))).toBe(-1);
  });

  it('decodeElements matches decodeUnit on random ranges and block boundaries', () => {
    const bits = normalBf16(300_007, 42);
    const unit = encodeUnit('u', oneMatrix(bits));
    const op = unit.outputPositions;
    expect(op.length).toBeGreaterThan(4);
    const r = rng(3);
    const ranges: Array<[number, number]> = [
      [0, 0],
      [0, 1],
      [0, bits.length],
      [bits.length - 1, bits.length],
    ];
    for (let b = 1; b < op.length - 1; b++) ranges.push([op[b] - 1, op[b] + 1], [op[b], op[b + 1]], [op[b - 1], op[b]]);
    for (let i = 0; i < 30; i++) {
      const a = Math.floor(r() * bits.length);
      ranges.push([a, Math.min(bits.length, a + Math.floor(r() * 20000))]);
    }
    for (const [a, b] of ranges) {
      expect(firstMismatch(decodeElements(unit, a, b), bits.subarray(a, b)), `[${a}, ${b})`).toBe(-1);
    }
    expect(() => decodeElements(unit, 5, 4)).toThrow();
    expect(() => decodeElements(unit, 0, bits.length + 1)).toThrow();
  });

  it('geometry: gaps and output positions sized by 4096-byte blocks', () => {
    const unit = encodeUnit('u', oneMatrix(normalBf16(200_000, 8)));
    const nBlocks = Math.ceil(unit.encodedExponent.length / BYTES_PER_BLOCK);
    expect(unit.gaps.length).toBe(320 * nBlocks);
    expect(unit.outputPositions.length).toBe(nBlocks + 1);
    expect(unit.outputPositions[nBlocks]).toBe(200_000);
  });

  it('rejects Inf and NaN naming the tensor', () => {
    for (const bad of [0x7f80, 0xff80, 0x7fc1, toBf16(2 ** 120)]) {
      const bits = normalBf16(1000, 1);
      bits[777] = bad;
      let err: unknown;
      try {
        encodeUnit('layer', [{ name: 'ok', shape: [2], bits: normalBf16(2, 2) }, { name: 'bad.weight', shape: [1000], bits }]);
      } catch (e) {
        err = e;
      }
      expect(isDf11Error(err, 'unencodable')).toBe(true);
      expect((err as Error).message).toContain('bad.weight');
    }
  });
});

describe('official DFloat11 fixtures', () => {
  const cases = [
    ['test/fixtures/official-df11/stories-15m', 'models/stories-15m'],
    ['test/fixtures/official-df11/tiny-qwen3', 'test/fixtures/hf/tiny-qwen3'],
  ] as const;
  for (const [df11Dir, bf16Dir] of cases) {
    it(`${df11Dir} decodes bit-exactly to ${bf16Dir}`, async () => {
      const df11 = await openModel(directoryFiles(df11Dir));
      const hf = await openModel(directoryFiles(bf16Dir));
      expect(df11.unitNames.length).toBeGreaterThan(0);
      for (const name of df11.unitNames) {
        const unit = await df11.readUnit(name);
        const decoded = decodeUnit(unit);
        for (const m of unit.matrices) {
          const original = asUint16((await hf.readTensor(m.name, 'BF16')).data);
          expect(firstMismatch(decoded.subarray(m.offset, m.offset + m.size), original), m.name).toBe(-1);
        }
        // Partial decode across the unit's first block boundary.
        const op = unit.outputPositions;
        if (op.length > 2) {
          expect(firstMismatch(decodeElements(unit, op[1] - 3, op[1] + 3), decoded.subarray(op[1] - 3, op[1] + 3))).toBe(-1);
        }
      }
    });
  }

  it('our ratio on stories-15m is within 0.1 points of the official compressor', async () => {
    const official = await openModel(directoryFiles('test/fixtures/official-df11/stories-15m'));
    const hf = await openModel(directoryFiles('models/stories-15m'));
    const plan = planUnits(hf, defaultPattern(hf.spec));
    expect([...plan.keys()].sort()).toEqual([...official.unitNames].sort());
    let ours = 0;
    let theirs = 0;
    let bf16Bytes = 0;
    for (const [name, tensors] of plan) {
      const matrices: MatrixInput[] = [];
      for (const t of tensors) {
        const { shape, data } = await hf.readTensor(t, 'BF16');
        matrices.push({ name: t, shape, bits: asUint16(data) });
      }
      const unit = encodeUnit(name, matrices);
      ours += unitStoredBytes(unit);
      theirs += unitStoredBytes(await official.readUnit(name));
      bf16Bytes += 2 * unit.signMantissa.length;
    }
    expect(Math.abs(ours - theirs) / bf16Bytes).toBeLessThan(0.001);
  });
});
