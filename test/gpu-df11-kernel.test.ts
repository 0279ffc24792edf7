/**
 * The decode kernel's paths give the same bits as the CPU decoder and report the same corrupt streams:
 * awkward units at the default workgroup size (exponent bytes copied from the count's `kept`), odd ranges
 * and rows, a narrow workgroup whose spans overflow `kept` (the second decode, stage_codes), and damaged
 * gaps, tables and streams. (gpu-df11-decode.test.ts: poisoned outputs, default limits, official units.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDf11Error } from '../src/errors.ts';
import { decodeUnit } from '../src/format/df11-cpu-decoder.ts';
import { encodeUnit } from '../src/format/df11-encoder.ts';
import type { Df11Unit } from '../src/format/df11-types.ts';
import { Df11Decoder } from '../src/gpu/df11-decode.ts';
import { readRange, readRows, readUnitOnce } from '../src/gpu/df11-readback.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { DF11_STREAM } from '../src/gpu/shader-constants.ts';
import { firstMismatch } from '../src/testing/compare.ts';
import { cloneUnit } from '../src/testing/fuzz/mutate.ts';
import { baseUnits, cpuDecode, sameDecode, unitCase } from '../src/testing/fuzz/unit-cases.ts';
import { concatBits, oneMatrix } from '../src/testing/matrix-inputs.ts';
import { bf16WithExponents, fibonacciExponentBf16, normalBf16 } from '../src/testing/random-weights.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await createNodeGpu();
});
afterAll(() => gpu?.destroy());

/** GPU decode of the whole unit, or the Df11Error code it raised. */
async function gpuDecode(decoder: Df11Decoder, unit: Df11Unit): Promise<Uint16Array | string> {
  try {
    return await readUnitOnce(decoder, unit);
  } catch (e) {
    if (isDf11Error(e)) return `${e.code}: ${e.message}`;
    throw e;
  }
}

const units = (() => {
  const matrices = [
    { name: 'a', shape: [77, 4], bits: normalBf16(308, 4) },
    { name: 'b', shape: [100_001], bits: normalBf16(100_001, 5) },
  ];
  return [
    { what: 'N(0, 0.02), two matrices', unit: encodeUnit('multi', matrices), bits: concatBits(matrices) },
    { what: 'single exponent (1-bit codes: 64 per span, staging in chunks)', ...one('single', bf16WithExponents(70_001, 3, () => 121)) },
    { what: 'half zeros', ...one('zeros', bf16WithExponents(30_001, 13, (r) => (r() < 0.5 ? 0 : 118 + Math.floor(r() * 5)))) },
    { what: 'codes of 26 bits (4 table levels)', ...one('fib', fibonacciExponentBf16(27, 7)) },
    { what: '4097 weights (one code past a block)', ...one('small', normalBf16(4097, 4097)) },
  ];
})();

function one(name: string, bits: Uint16Array): { unit: Df11Unit; bits: Uint16Array } {
  return { unit: encodeUnit(name, oneMatrix(bits)), bits };
}

describe('DF11 GPU decode kernel', () => {
  let decoder: Df11Decoder;
  beforeAll(async () => {
    decoder = await Df11Decoder.create(gpu);
  });
  afterAll(() => decoder?.destroy());

  it('decodes awkward units bit for bit', async () => {
    for (const { what, unit, bits } of units) {
      expect(firstMismatch(decodeUnit(unit), bits), what).toBe(-1);
      const got = await gpuDecode(decoder, unit);
      expect(typeof got === 'string' ? got : firstMismatch(got, bits), what).toBe(-1);
    }
  });

  it('odd ranges and rows', async () => {
    const { unit, bits } = units[0]!;
    const gpuUnit = await decoder.upload(unit);
    for (const [b, e] of [[1, 2], [5, 4096 * 3 + 7], [308, 100_309], [99_999, 100_309]] as const) {
      expect(firstMismatch(await readRange(decoder, gpuUnit, b, e), bits.subarray(b, e)), `[${b}, ${e})`).toBe(-1);
    }
    const ids = new Uint32Array([0, 76, 5, 5]);
    const rows = await readRows(decoder, gpuUnit, 0, ids);
    const expected = new Uint16Array(ids.length * 4);
    ids.forEach((id, t) => expected.set(bits.subarray(id * 4, id * 4 + 4), t * 4));
    expect(firstMismatch(rows, expected)).toBe(-1);
    gpuUnit.destroy();
  });

  it('64 invocations per block (spans of 512 bits: codes overflow `kept`, staged by the second decode)', async () => {
    const narrow = await Df11Decoder.create(gpu, { workgroupSize: 64 });
    try {
      for (const { what, unit, bits } of units.slice(0, 2)) {
        // more codes in block 0 than its 64 spans can keep: some span (on average every one) overflows
        expect(unit.outputPositions[1]! - unit.outputPositions[0]!, what).toBeGreaterThan(64 * 4 * DF11_STREAM.KEEP_WORDS);
        const got = await gpuDecode(narrow, unit);
        expect(typeof got === 'string' ? got : firstMismatch(got, bits), what).toBe(-1);
      }
    } finally {
      narrow.destroy();
    }
  });

  it('reports damaged gaps, tables, counts and streams', async () => {
    const good = units[0]!.unit;
    const k = good.luts.length / 256;
    const damaged: Array<[string, (u: Df11Unit) => void, RegExp]> = [
      ['gap of window 300', (u) => (u.gaps[(300 * 5) >> 3]! ^= 0x80 >> ((300 * 5) & 7)), /gap/],
      ['gap of block 1', (u) => (u.gaps[320]! ^= 0x80), /gap/],
      ['pointer loop', (u) => u.luts.fill(255, 0, 512), /pointer/],
      ['zero code lengths', (u) => u.luts.fill(0, (k - 1) * 256, k * 256), /code length/],
      ['output_positions off by one', (u) => (u.outputPositions[2]! += 1), /count/],
      ['stream cut short', (u) => (u.encodedExponent = u.encodedExponent.slice(0, u.encodedExponent.length - 3)), /./],
    ];
    for (const [what, damage, pattern] of damaged) {
      const u = cloneUnit(good);
      damage(u);
      const got = await gpuDecode(decoder, u);
      expect(typeof got, what).toBe('string');
      expect(got as string, what).toMatch(/^corrupt-stream: /);
      expect(got as string, what).toMatch(pattern);
    }
    // and decodes cleanly afterwards
    expect(firstMismatch((await gpuDecode(decoder, good)) as Uint16Array, units[0]!.bits)).toBe(-1);
  });

  it('seeded corrupt units (the fuzz cases): GPU and CPU agree on every one', async () => {
    const bases = baseUnits();
    const disagreements: number[] = [];
    for (let seed = 1; seed <= 40; seed++) {
      const { unit } = unitCase(bases, seed);
      const got = await gpuDecode(decoder, unit);
      const gpu = typeof got === 'string' ? { ok: false as const, code: got.split(':')[0]! } : { ok: true as const, bits: got };
      if (!sameDecode(gpu, cpuDecode(unit))) disagreements.push(seed);
    }
    expect(disagreements).toEqual([]);
  });
});
