import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DECODERS, verifyModels } from '../src/cli/commands/verify.ts';
import { isDf11Error } from '../src/errors.ts';
import { decodeUnit } from '../src/format/df11-cpu-decoder.ts';
import { encodeUnit } from '../src/format/df11-encoder.ts';
import type { Df11Unit } from '../src/format/df11-types.ts';
import { openModel } from '../src/format/model-reader.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import { bf16PairBytes, Df11Decoder, mergeDecodes } from '../src/gpu/df11-decode.ts';
import { readRows, readUnit } from '../src/gpu/df11-readback.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { firstMismatch } from '../src/testing/compare.ts';
import { concatBits, oneMatrix } from '../src/testing/matrix-inputs.ts';
import { bf16WithExponents, fibonacciExponentBf16, normalBf16, rng } from '../src/testing/random-weights.ts';

const POISON = 0xdeadbeef;
const OFFICIAL = ['stories-15m', 'tiny-qwen3'].map((m) => fileURLToPath(new URL(`./fixtures/official-df11/${m}`, import.meta.url)));

function clone(u: Df11Unit): Df11Unit {
  return { ...u, luts: u.luts.slice(), outputPositions: u.outputPositions.slice() };
}

/** A storage buffer of `bytes` filled with POISON. */
async function poisoned(gpu: Gpu, bytes: number): Promise<GPUBuffer> {
  const buffer = await gpu.createBuffer({ label: 'poisoned out', size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  gpu.writeBuffer(buffer, 0, new Uint32Array(bytes / 4).fill(POISON));
  return buffer;
}

/**
 * Decode `elements` into a poisoned buffer at byte `outOffset`; check nothing outside the output's
 * words was written (and the unused high half of an odd-sized output is 0). Throws what checkStatus throws.
 */
async function decodePoisoned(
  decoder: Df11Decoder,
  elements: number,
  outOffset: number,
  record: (encoder: GPUCommandEncoder, out: GPUBuffer) => void,
): Promise<Uint16Array> {
  const gpu = decoder.gpu;
  const bytes = bf16PairBytes(elements);
  const out = await poisoned(gpu, outOffset + bytes + 256);
  const encoder = gpu.device.createCommandEncoder();
  record(encoder, out);
  gpu.submit([encoder.finish()]);
  const words = new Uint32Array(await gpu.read(out));
  out.destroy();
  await decoder.checkStatus();
  const before = words.subarray(0, outOffset / 4);
  const after = words.subarray((outOffset + bytes) / 4);
  expect(before.every((w) => w === POISON) && after.every((w) => w === POISON), 'writes outside the output').toBe(true);
  const halves = new Uint16Array(words.buffer, outOffset, bytes / 2);
  if (elements % 2 === 1) expect(halves[elements]).toBe(0);
  return halves.slice(0, elements);
}

async function expectRejects(promise: Promise<unknown>, code: 'corrupt-stream' | 'bad-request', pattern: RegExp): Promise<void> {
  let err: unknown;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  expect(isDf11Error(err, code), String(err)).toBe(true);
  expect((err as Error).message).toMatch(pattern);
}

describe.each([
  { limits: 'adapter limits', forceDefaultLimits: false },
  { limits: 'default limits', forceDefaultLimits: true },
])('DF11 GPU decode, $limits', ({ forceDefaultLimits }) => {
  let gpu: Gpu;
  let decoder: Df11Decoder;

  beforeAll(async () => {
    gpu = await createNodeGpu({ forceDefaultLimits });
    decoder = await Df11Decoder.create(gpu);
  });
  afterAll(() => {
    decoder.destroy();
    gpu.destroy();
  });

  /** Every matrix of `unit` decoded into poisoned buffers, concatenated; compared with `expected`. */
  async function expectMatrices(unit: Df11Unit, expected: Uint16Array, outOffset = 0, dec = decoder): Promise<void> {
    const gpuUnit = await dec.upload(unit);
    for (const [i, m] of unit.matrices.entries()) {
      const got = await decodePoisoned(dec, m.size, outOffset, (enc, out) => dec.encodeMatrix(enc, gpuUnit, i, out, outOffset));
      const bad = firstMismatch(got, expected.subarray(m.offset, m.offset + m.size));
      expect(bad, `${unit.name} ${m.name} [${m.shape}] first mismatch`).toBe(-1);
    }
    gpuUnit.destroy();
  }

  // SwiftShader has `subgroups` at adapter limits and not at default limits: the two span prefix sums
  it('uses the subgroup prefix sum exactly where the device has subgroups', () => {
    expect(decoder.subgroups).toBe(gpu.features.subgroups);
  });

  it.each([1, 2, 511, 4095, 4097, 1_000_003])('N(0, 0.02) unit of %i weights == original == CPU decoder', async (n) => {
    const bits = normalBf16(n, n);
    const unit = encodeUnit('normal', oneMatrix(bits));
    expect(firstMismatch(decodeUnit(unit), bits)).toBe(-1);
    await expectMatrices(unit, bits);
  });

  it('a single-exponent unit (1-bit codes, 32768 per block: staging in chunks)', async () => {
    const bits = bf16WithExponents(300_001, 3, () => 121);
    const unit = encodeUnit('single', oneMatrix(bits));
    expect(unit.outputPositions[1] - unit.outputPositions[0]).toBeGreaterThan(30_000);
    await expectMatrices(unit, bits);
  });

  it('half zeros and subnormals (exponent 0: zero exponent bytes in the staging)', async () => {
    const bits = bf16WithExponents(50_001, 13, (r) => (r() < 0.5 ? 0 : 118 + Math.floor(r() * 5)));
    await expectMatrices(encodeUnit('zeros', oneMatrix(bits)), bits);
  });

  it('codes of 26 bits (Fibonacci histogram: 4 table levels)', async () => {
    const bits = fibonacciExponentBf16(27, 7);
    const unit = encodeUnit('fib', oneMatrix(bits));
    const k = unit.luts.length / 256;
    expect(Math.max(...unit.luts.subarray((k - 1) * 256))).toBeGreaterThan(24);
    await expectMatrices(unit, bits);
  });

  // at default limits (same kernel, smaller staging) a sample of stories-15m keeps the file fast
  it(`${forceDefaultLimits ? 'sampled' : 'every'} unit of both official fixtures matches the CPU decoder`, async () => {
    for (const dir of OFFICIAL) {
      const model = await openModel(directoryFiles(dir));
      const sample = (name: string, i: number) => !forceDefaultLimits || dir.endsWith('tiny-qwen3') || i % 4 === 0;
      for (const name of model.unitNames.filter(sample)) {
        const unit = await model.readUnit(name);
        const gpuUnit = await decoder.upload(unit);
        const got = await readUnit(decoder, gpuUnit);
        gpuUnit.destroy();
        expect(firstMismatch(got, decodeUnit(unit)), `${dir} ${name}`).toBe(-1);
      }
    }
  });

  it('range decodes of every matrix of a multi-matrix unit (odd offsets and sizes), at output offsets 0 and 256', async () => {
    const shapes = [[3, 5], [7], [1001, 7], [2, 4097], [1], [64, 384], [5000, 3]];
    const matrices = shapes.map((shape, i) => {
      const size = shape.reduce((a, b) => a * b, 1);
      return { name: `m${i}`, shape, bits: normalBf16(size, 100 + i) };
    });
    const unit = encodeUnit('multi', matrices);
    const all = concatBits(matrices);
    await expectMatrices(unit, all, 0);
    await expectMatrices(unit, all, 256);
  });

  it('merged decodes: matrices back to back in the unit and the output become one range, the others stay apart', async () => {
    const shapes = [[64, 6], [3, 128], [40, 32], [7, 3], [128, 33]];
    const matrices = shapes.map((shape, i) => {
      const size = shape.reduce((a, b) => a * b, 1);
      return { name: `m${i}`, shape, bits: normalBf16(size, 200 + i) };
    });
    const unit = encodeUnit('layer', matrices);
    const gpuUnit = await decoder.upload(unit);
    // m0..m2 back to back in unit order; m4 next in the output but not in the unit; m3 (odd size) last
    const outOffsets = [0, 768, 1536, 13056, 4352];
    const ranges = mergeDecodes([4, 1, 0, 3, 2].map((index) => ({ unit: gpuUnit, index, outOffset: outOffsets[index]! })));
    const offsetOf = (k: number) => unit.matrices[k]!.offset;
    expect(ranges.map((r) => [r.begin, r.end, r.outOffset])).toEqual([
      [0, offsetOf(3), 0],
      [offsetOf(3), offsetOf(4), 13056],
      [offsetOf(4), unit.signMantissa.length, 4352],
    ]);
    const out = await poisoned(gpu, 13056 + 44 + 256);
    const jobs = await Promise.all(ranges.map((r) => decoder.createRangeJob(gpuUnit, r.begin, r.end)));
    const encoder = gpu.device.createCommandEncoder();
    ranges.forEach((r, k) => decoder.encodeRange(encoder, jobs[k]!, out, r.outOffset));
    gpu.submit([encoder.finish()]);
    const words = new Uint32Array(await gpu.read(out));
    await decoder.checkStatus();
    const halves = new Uint16Array(words.buffer);
    for (const [k, m] of unit.matrices.entries()) {
      const got = halves.subarray(outOffsets[k]! / 2, outOffsets[k]! / 2 + m.size);
      expect(firstMismatch(got, matrices[k]!.bits), m.name).toBe(-1);
    }
    expect(halves[13056 / 2 + 21]).toBe(0); // high half of m3's last word
    const untouched = [[4096, 4352], [12800, 13056], [13056 + 44, words.byteLength]].map(([a, b]) => words.subarray(a! / 4, b! / 4));
    expect(untouched.every((w) => w.every((x) => x === POISON)), 'writes outside the outputs').toBe(true);
    for (const j of jobs) j.destroy();
    out.destroy();
    gpuUnit.destroy();
  });

  it('row decodes (embedding lookup) at an odd matrix offset: random ids with repeats, first and last row', async () => {
    const head = { name: 'head', shape: [3, 5], bits: normalBf16(15, 1) };
    const rows = 300;
    const hidden = 384;
    const embed = { name: 'embed', shape: [rows, hidden], bits: normalBf16(rows * hidden, 2) };
    const unit = encodeUnit('embed', [head, embed]);
    const gpuUnit = await decoder.upload(unit);
    const r = rng(9);
    const ids = new Uint32Array([0, rows - 1, ...Array.from({ length: 20 }, () => Math.floor(r() * rows)), 7, 7, rows - 1, 0]);
    const job = await decoder.createRowJob(gpuUnit, 1, ids.length);
    job.setTokens(ids);
    const got = await decodePoisoned(decoder, ids.length * hidden, 0, (enc, out) => decoder.encodeRows(enc, job, out));
    const expected = new Uint16Array(ids.length * hidden);
    ids.forEach((id, t) => expected.set(embed.bits.subarray(id * hidden, (id + 1) * hidden), t * hidden));
    expect(firstMismatch(got, expected)).toBe(-1);
    // the job is reusable with more tokens than its first call had
    const more = new Uint32Array([...ids, 5, 6]);
    const bigJob = await decoder.createRowJob(gpuUnit, 1, more.length);
    bigJob.setTokens(more.subarray(0, 1));
    await decodePoisoned(decoder, hidden, 0, (enc, out) => decoder.encodeRows(enc, bigJob, out));
    const out = await poisoned(gpu, bf16PairBytes(more.length * hidden));
    bigJob.setTokens(more);
    const enc = gpu.device.createCommandEncoder();
    decoder.encodeRows(enc, bigJob, out);
    gpu.submit([enc.finish()]);
    const all = new Uint16Array(await gpu.read(out));
    expect(firstMismatch(all.subarray(0, ids.length * hidden), expected)).toBe(-1);
    expect(firstMismatch(all.subarray((more.length - 1) * hidden), embed.bits.subarray(6 * hidden, 7 * hidden))).toBe(-1);
    out.destroy();
    // one token, then another: the same count keeps the params, the new id is the one decoded
    bigJob.setTokens(more.subarray(0, 1));
    bigJob.setTokens(Uint32Array.of(6));
    const one = await decodePoisoned(decoder, hidden, 0, (enc, o) => decoder.encodeRows(enc, bigJob, o));
    expect(firstMismatch(one, embed.bits.subarray(6 * hidden, 7 * hidden))).toBe(-1);
    bigJob.destroy();
    // the convenience path agrees
    expect(firstMismatch(await readRows(decoder, gpuUnit, 1, ids.subarray(2, 5)), expected.subarray(2 * hidden, 5 * hidden))).toBe(-1);
    await expectRejects(readRows(decoder, gpuUnit, 1, new Uint32Array([rows])), 'bad-request', /token id/);
    job.destroy();
    gpuUnit.destroy();
  });

  describe('corrupt streams are reported, never hang', () => {
    const bits = normalBf16(50_000, 11);
    const good = encodeUnit('good', oneMatrix(bits));
    const k = good.luts.length / 256;
    const hist = new Uint32Array(256);
    for (const w of bits) hist[(w >> 7) & 0xff]++;
    const common = hist.indexOf(Math.max(...hist));

    async function decodeDamaged(damage: (u: Df11Unit) => void): Promise<Uint16Array> {
      const u = clone(good);
      damage(u);
      const gpuUnit = await decoder.upload(u);
      try {
        return await readUnit(decoder, gpuUnit);
      } finally {
        gpuUnit.destroy();
      }
    }

    it('zero code length of a reached symbol', async () => {
      await expectRejects(decodeDamaged((u) => (u.luts[(k - 1) * 256 + common] = 0)), 'corrupt-stream', /code length/);
    });

    it('pointer chain deeper than 4 tables, and a pointer past the tables', async () => {
      expect(k).toBeGreaterThanOrEqual(3);
      await expectRejects(decodeDamaged((u) => u.luts.fill(255, 0, 512)), 'corrupt-stream', /pointer/); // table 1 points to itself
      await expectRejects(decodeDamaged((u) => u.luts.fill(240, 0, 256)), 'corrupt-stream', /pointer/); // table 16 does not exist
    });

    it('an output_positions entry off by one', async () => {
      expect(good.outputPositions.length).toBeGreaterThan(3);
      await expectRejects(decodeDamaged((u) => (u.outputPositions[2] += 1)), 'corrupt-stream', /count/);
      await expectRejects(decodeDamaged((u) => (u.outputPositions[1] -= 1)), 'corrupt-stream', /count/);
    });

    it('clean decodes after a reported corruption', async () => {
      await expectRejects(decodeDamaged((u) => (u.luts[(k - 1) * 256 + common] = 0)), 'corrupt-stream', /code length/);
      expect(firstMismatch(await decodeDamaged(() => undefined), bits)).toBe(-1);
    });
  });
});

describe('df11 verify --gpu', () => {
  it('verifies the official tiny-qwen3 against its BF16 original with the GPU decoder', async () => {
    const fixture = (p: string) => fileURLToPath(new URL(`./fixtures/${p}`, import.meta.url));
    const df11 = await openModel(directoryFiles(fixture('official-df11/tiny-qwen3')));
    const ref = await openModel(directoryFiles(fixture('hf/tiny-qwen3')));
    const lines: string[] = [];
    const result = await verifyModels(df11, ref, await DECODERS.gpu((line) => lines.push(line)), (line) => lines.push(line));
    expect(result.mismatches, lines.join('\n')).toBe(0);
    expect(result.units).toBe(df11.unitNames.length);
    expect(lines[0]).toMatch(/^GPU adapter: \S/); // names the adapter it used
  });
});
