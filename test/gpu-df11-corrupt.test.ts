/**
 * The GPU decode kernel checks what the CPU decoder checks (issue 15): a damaged gap or a stream cut short
 * is reported through the status word, not decoded into wrong weights. Each damaged unit is decoded by
 * both, and they must agree: both raise corrupt-stream, or both give the same bits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDf11Error } from '../src/errors.ts';
import { Df11Decoder } from '../src/gpu/df11-decode.ts';
import { readUnitOnce } from '../src/gpu/df11-readback.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import type { Df11Unit } from '../src/format/df11-types.ts';
import { cloneUnit } from '../src/testing/fuzz/mutate.ts';
import { baseUnits, cpuDecode, sameDecode, unitCase, type Decoded } from '../src/testing/fuzz/unit-cases.ts';

let gpu: Gpu;
let decoder: Df11Decoder;

beforeAll(async () => {
  gpu = await createNodeGpu();
  decoder = await Df11Decoder.create(gpu, { workgroupSize: 256 });
});

afterAll(() => {
  decoder?.destroy();
  gpu?.destroy();
});

async function gpuDecode(unit: Df11Unit): Promise<Decoded & { message?: string }> {
  try {
    return { ok: true, bits: await readUnitOnce(decoder, unit) };
  } catch (e) {
    if (isDf11Error(e)) return { ok: false, code: e.code, message: e.message };
    throw e;
  }
}

/** Set the 5-bit gap of window `thread` (packed MSB-first). */
function setGap(u: Df11Unit, thread: number, value: number): void {
  for (let i = 0; i < 5; i++) {
    const bit = thread * 5 + i;
    const mask = 0x80 >> (bit & 7);
    if ((value >> (4 - i)) & 1) u.gaps[bit >> 3] |= mask;
    else u.gaps[bit >> 3] &= ~mask;
  }
}

function gapOf(u: Df11Unit, thread: number): number {
  let v = 0;
  for (let i = 0; i < 5; i++) {
    const bit = thread * 5 + i;
    v = (v << 1) | ((u.gaps[bit >> 3] >> (7 - (bit & 7))) & 1);
  }
  return v;
}

describe('GPU decode rejects what the CPU decoder rejects', () => {
  const bases = baseUnits();
  const big = bases[2]!;

  it('the undamaged units decode identically', async () => {
    for (const base of bases) expect(sameDecode(await gpuDecode(base), cpuDecode(base))).toBe(true);
  });

  it('a window gap that disagrees with the previous code (inside a span, at a span start, at a block start)', async () => {
    // threads 201 (second window of a 256-wide span), 300 (first window of a span), 512 (block 1's first)
    for (const thread of [201, 300, 512]) {
      const u = cloneUnit(big);
      setGap(u, thread, (gapOf(u, thread) + 1) % 32);
      expect(cpuDecode(u), `thread ${thread}`).toEqual({ ok: false, code: 'corrupt-stream' });
      const got = await gpuDecode(u);
      expect(got.ok, `thread ${thread}`).toBe(false);
      expect(got.message).toMatch(/gap/);
    }
  });

  it('with 64 invocations (spans of 8 windows) too', async () => {
    const narrow = await Df11Decoder.create(gpu, { workgroupSize: 64 });
    try {
      for (const thread of [3, 8, 511, 512]) {
        const u = cloneUnit(big);
        setGap(u, thread, (gapOf(u, thread) + 31) % 32);
        expect(cpuDecode(u).ok, `thread ${thread}`).toBe(false);
        await expect(readUnitOnce(narrow, u), `thread ${thread}`).rejects.toThrow(/gap/);
      }
      expect(sameDecode({ ok: true, bits: await readUnitOnce(narrow, big) }, cpuDecode(big))).toBe(true);
    } finally {
      narrow.destroy();
    }
  });

  it('a stream cut short inside its last block', async () => {
    const u = cloneUnit(big);
    u.encodedExponent = u.encodedExponent.slice(0, u.encodedExponent.length - 3);
    expect(cpuDecode(u)).toEqual({ ok: false, code: 'corrupt-stream' });
    expect((await gpuDecode(u)).ok).toBe(false);
  });

  it('a table-0 entry that breaks the prefix property (fuzz seed 1000001431): no multi-code shortcut through it', async () => {
    const { unit } = unitCase(bases, 1_000_001_431);
    const cpu = cpuDecode(unit);
    expect(cpu.ok).toBe(true); // the damaged entry is reached, but decodes to a valid (other) symbol
    expect(sameDecode(await gpuDecode(unit), cpu)).toBe(true);
  });

  it('seeded corrupt units: GPU and CPU agree on every one', async () => {
    const disagreements: number[] = [];
    for (let seed = 1; seed <= 80; seed++) {
      const { unit } = unitCase(bases, seed);
      if (!sameDecode(await gpuDecode(unit), cpuDecode(unit))) disagreements.push(seed);
    }
    expect(disagreements).toEqual([]);
  });
});
