/**
 * Fused DF11 decode + GEMV (shaders/df11_gemv.wgsl) against a CPU reference on awkward shapes: rows that
 * straddle stream blocks, rows longer than a block, odd matrix offsets inside a unit, blocks staged in
 * several chunks; bias, residual, output offset and the gated activation; corrupt streams through the
 * status word; both row reductions (subgroups, workgroup memory). Tolerance: |fused - exact| <= 1e-5 · Σ|w·xin| per row (f32 summation in another order than
 * the unfused GEMV); with x = e_j the result is column j of the decoded matrix exactly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDf11Error } from '../src/errors.ts';
import { encodeUnit } from '../src/format/df11-encoder.ts';
import type { Df11Unit } from '../src/format/df11-types.ts';
import { allowsStreamWorkgroup, bf16PairBytes, Df11Decoder, type GpuDf11Unit } from '../src/gpu/df11-decode.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { Df11GemvKernel, gemvGeometry, gemvPartialsBytes, stacksInUnit } from '../src/gpu/kernels/df11-gemv.ts';
import { MatmulKernel, type Activation } from '../src/gpu/kernels/matmul.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import type { MatrixInput } from '../src/format/df11-encoder.ts';
import { bf16WithExponents, normalBf16 } from '../src/testing/random-weights.ts';
import { bf16ToF32, gpuData, poisoned, randomF32, readF32, rng, runPass } from './kernels-helpers.ts';

const REL = 1e-5;

/** Matrices of one unit: odd shapes at odd offsets, a row longer than three blocks, a dense (1-bit) matrix. */
function awkwardMatrices(): MatrixInput[] {
  return [
    { name: 'a', shape: [137, 153], bits: normalBf16(137 * 153, 1) },
    { name: 'b', shape: [301, 131], bits: normalBf16(301 * 131, 2) },
    { name: 'c', shape: [3, 40_001], bits: normalBf16(3 * 40_001, 3) },
    // one exponent: 1-bit codes, 32768 elements per block, staged in several chunks; rows cross chunks
    { name: 'd', shape: [7, 9_999], bits: bf16WithExponents(7 * 9_999, 4, () => 121) },
  ];
}

function silu(g: number): number {
  return g / (1 + Math.exp(-g));
}

/** xin = x, or act(gate) * up for a (2 * cols) gate | up input. */
function xinOf(x: Float32Array, cols: number, activation: Activation): Float64Array {
  if (activation === 'none') return Float64Array.from(x.subarray(0, cols));
  if (activation !== 'silu') throw new Error('test covers silu only');
  return Float64Array.from({ length: cols }, (_, k) => silu(x[k]!) * x[cols + k]!);
}

/** Exact (f64) W · xin per row and Σ|w·xin| per row. */
function reference(w: Float32Array, rows: number, cols: number, xin: Float64Array): { exact: Float64Array; scale: Float64Array } {
  const exact = new Float64Array(rows);
  const scale = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    let a = 0;
    for (let k = 0; k < cols; k++) {
      const p = w[r * cols + k]! * xin[k]!;
      s += p;
      a += Math.abs(p);
    }
    exact[r] = s;
    scale[r] = a;
  }
  return { exact, scale };
}

function expectClose(got: Float32Array, exact: Float64Array, scale: Float64Array, what: string, rel = REL): void {
  for (let r = 0; r < exact.length; r++) {
    const err = Math.abs(got[r]! - exact[r]!);
    if (!(err <= rel * scale[r]! + 1e-30)) expect.fail(`${what} row ${r}: got ${got[r]}, exact ${exact[r]} (err ${err}, bound ${rel * scale[r]!})`);
  }
}

// subgroup reductions where the adapter has them (SwiftShader does) and 512 invocations where it allows them, at
// its limits; workgroup memory and the default size (the decoder's: 256) at the default limits
describe.each([
  { limits: 'adapter limits', forceDefaultLimits: false, subgroups: undefined },
  { limits: 'default limits', forceDefaultLimits: true, subgroups: false },
])('fused DF11 decode + GEMV, $limits', ({ forceDefaultLimits, subgroups }) => {
  let gpu: Gpu;
  let decoder: Df11Decoder;
  let gemv: Df11GemvKernel;
  const matrices = awkwardMatrices();
  let unit: Df11Unit;
  let gpuUnit: GpuDf11Unit;
  let partials: GPUBuffer;

  beforeAll(async () => {
    gpu = await createNodeGpu({ forceDefaultLimits });
    decoder = await Df11Decoder.create(gpu);
    const workgroupSize = !forceDefaultLimits && allowsStreamWorkgroup(gpu, 512) ? 512 : undefined;
    gemv = await Df11GemvKernel.create(decoder, { subgroups, workgroupSize });
    expect(gemv.subgroups).toBe(subgroups ?? gpu.features.subgroups);
    unit = encodeUnit('awkward', matrices);
    gpuUnit = await decoder.upload(unit);
    const most = Math.max(...matrices.map((_, i) => gemvPartialsBytes(gemvGeometry(gpuUnit, i))));
    partials = await poisoned(gpu, most / 4, 'partials');
  });
  afterAll(() => {
    partials.destroy();
    gpuUnit.destroy();
    decoder.destroy();
    gpu.destroy();
  });

  it('runs the decoder\'s workgroup size by default, 512 where asked and allowed; refuses a size the device does not allow', async () => {
    const allows512 = gpu.limits.maxComputeInvocationsPerWorkgroup >= 512 && gpu.limits.maxComputeWorkgroupSizeX >= 512;
    expect(gemv.workgroupSize).toBe(!forceDefaultLimits && allows512 ? 512 : 256);
    expect((await Df11GemvKernel.create(decoder, { subgroups })).workgroupSize).toBe(decoder.workgroupSize);
    await expect(Df11GemvKernel.create(decoder, { subgroups, workgroupSize: 1024 })).rejects.toMatchObject({ code: 'gpu-validation' });
  });

  it('the test shapes cover what they claim: rows straddling blocks, rows over several blocks, chunked blocks', () => {
    const op = unit.outputPositions;
    const blockStarts = Array.from(op.subarray(1, -1));
    const inside = (m: MatrixInput, offset: number) => blockStarts.filter((s) => s > offset && s < offset + m.bits.length);
    let offset = 0;
    const straddles = matrices.map((m) => {
      const cols = m.shape[1]!;
      const s = inside(m, offset).some((b) => (b - offset) % cols !== 0);
      offset += m.bits.length;
      return s;
    });
    expect(straddles.every(Boolean)).toBe(true);
    expect(gemvGeometry(gpuUnit, 2).blocks).toBeGreaterThan(3); // c: 3 rows of 40001 over > 3 blocks
    const d = gemvGeometry(gpuUnit, 3);
    expect(op[d.firstBlock + 2]! - op[d.firstBlock + 1]!).toBeGreaterThan(30_000); // a dense block of d
  });

  it.each(awkwardMatrices().map((m, i) => [m.name, i] as const))('matrix %s: random x, bias, residual and output offset vs the exact product', async (_, i) => {
    const m = matrices[i]!;
    const [rows, cols] = m.shape as [number, number];
    const random = rng(100 + i);
    const x = randomF32(cols + 5, random); // read from element 3 on
    const bias = randomF32(rows + 2, random); // read from element 2 on
    const init = randomF32(rows + 8, random);
    const xBuf = await gpuData(gpu, x);
    const biasBuf = await gpuData(gpu, bias);
    const out = await gpuData(gpu, init);
    const call = await gemv.bind(gpuUnit, i, { x: xBuf, bias: biasBuf, out, partials }, { xOffset: 3, biasOffset: 2, outOffset: 4, accumulate: true });
    await runPass(gpu, (pass) => call.encode(pass));
    await decoder.checkStatus();
    const got = await readF32(gpu, out, rows + 8);
    const w = bf16ToF32(m.bits);
    const { exact, scale } = reference(w, rows, cols, xinOf(x.subarray(3), cols, 'none'));
    for (let r = 0; r < rows; r++) {
      exact[r] = exact[r]! + bias[2 + r]! + init[4 + r]!;
      scale[r] = scale[r]! + Math.abs(bias[2 + r]!) + Math.abs(init[4 + r]!);
    }
    expectClose(got.subarray(4, 4 + rows), exact, scale, m.name);
    // untouched around the output
    expect(Array.from(got.subarray(0, 4))).toEqual(Array.from(init.subarray(0, 4)));
    expect(Array.from(got.subarray(4 + rows))).toEqual(Array.from(init.subarray(4 + rows, rows + 8)));
    call.destroy();
    for (const b of [xBuf, biasBuf, out]) b.destroy();
  });

  it('x = e_j gives column j of the decoded matrix exactly (first, middle, last column of every matrix)', async () => {
    for (const [i, m] of matrices.entries()) {
      const [rows, cols] = m.shape as [number, number];
      const w = bf16ToF32(m.bits);
      for (const j of [0, Math.floor(cols / 2), cols - 1]) {
        const x = new Float32Array(cols);
        x[j] = 1;
        const xBuf = await gpuData(gpu, x);
        const out = await poisoned(gpu, rows);
        const call = await gemv.bind(gpuUnit, i, { x: xBuf, out, partials });
        await runPass(gpu, (pass) => call.encode(pass));
        await decoder.checkStatus();
        const got = await readF32(gpu, out, rows);
        const column = Float32Array.from({ length: rows }, (_, r) => w[r * cols + j]!);
        expect(Array.from(got), `${m.name} column ${j}`).toEqual(Array.from(column));
        call.destroy();
        xBuf.destroy();
        out.destroy();
      }
    }
  });

  it('agrees with the unfused path (decode, then the GEMV) and applies the gated activation', async () => {
    const i = 1;
    const m = matrices[i]!;
    const [rows, cols] = m.shape as [number, number];
    const matmul = await MatmulKernel.create(gpu);
    const x = randomF32(2 * cols, rng(7), 2); // gate | up
    const xBuf = await gpuData(gpu, x);
    const fusedOut = await poisoned(gpu, rows);
    const plainOut = await poisoned(gpu, rows);
    const decoded = await gpu.createBuffer({ label: 'decoded', size: Math.ceil(bf16PairBytes(m.bits.length) / 16) * 16, usage: GPUBufferUsage.STORAGE });
    const fused = await gemv.bind(gpuUnit, i, { x: xBuf, out: fusedOut, partials }, { activation: 'silu' });
    const plain = await matmul.bind(xBuf, { binding: decoded, offset: 0, rows, cols }, undefined, plainOut, 'silu');
    await runPass(gpu, (pass) => {
      decoder.encodeMatrix(pass, gpuUnit, i, decoded);
      plain.encode(pass, { tokens: 1 });
      fused.encode(pass);
    });
    await decoder.checkStatus();
    const [a, b] = [await readF32(gpu, fusedOut, rows), await readF32(gpu, plainOut, rows)];
    const { exact, scale } = reference(bf16ToF32(m.bits), rows, cols, xinOf(x, cols, 'silu'));
    // the activation is computed in f32 on the GPU: a few more ulps per product
    expectClose(a, exact, scale, 'fused silu', 4 * REL);
    expectClose(b, exact, scale, 'unfused silu', 4 * REL);
    for (const buf of [xBuf, fusedOut, plainOut, decoded]) buf.destroy();
    fused.destroy();
    plain.destroy();
  });

  it('matrices back to back with the same columns (q | k | v) run as one stacked call', async () => {
    const parts = [50, 17, 33].map((rows, k) => ({ name: `p${k}`, shape: [rows, 257], bits: normalBf16(rows * 257, 20 + k) }));
    const stackedUnit = await decoder.upload(encodeUnit('stacked', [{ name: 'lead', shape: [3, 5], bits: normalBf16(15, 19) }, ...parts]));
    expect(stacksInUnit(stackedUnit, [1, 2, 3])).toBe(true);
    expect(stacksInUnit(stackedUnit, [1, 3])).toBe(false); // not back to back
    expect(stacksInUnit(stackedUnit, [0, 1])).toBe(false); // other columns
    expect(stacksInUnit(gpuUnit, [0, 1])).toBe(false);
    const x = randomF32(257, rng(21));
    const xBuf = await gpuData(gpu, x);
    const out = await poisoned(gpu, 100);
    const call = await gemv.bind(stackedUnit, [1, 2, 3], { x: xBuf, out, partials });
    expect(call.geometry.rows).toBe(100);
    await runPass(gpu, (pass) => call.encode(pass));
    await decoder.checkStatus();
    const all = new Uint16Array(100 * 257);
    parts.forEach((m, k) => all.set(m.bits, [0, 50, 67][k]! * 257));
    const { exact, scale } = reference(bf16ToF32(all), 100, 257, xinOf(x, 257, 'none'));
    expectClose(await readF32(gpu, out, 100), exact, scale, 'stacked');
    call.destroy();
    stackedUnit.destroy();
    xBuf.destroy();
    out.destroy();
  });

  it('a corrupt stream is reported through the status word (and the next clean call passes)', async () => {
    const bad: Df11Unit = { ...unit, luts: unit.luts.slice(), outputPositions: unit.outputPositions.slice() };
    const b = gemvGeometry(gpuUnit, 1).firstBlock + 1; // a block boundary inside matrix b
    bad.outputPositions[b] = bad.outputPositions[b]! + 1;
    const badUnit = await decoder.upload(bad);
    const [rows, cols] = matrices[1]!.shape as [number, number];
    const xBuf = await gpuData(gpu, randomF32(cols, rng(9)));
    const out = await poisoned(gpu, rows);
    for (const u of [badUnit, gpuUnit]) {
      const call = await gemv.bind(u, 1, { x: xBuf, out, partials });
      await runPass(gpu, (pass) => call.encode(pass));
      call.destroy();
      if (u === gpuUnit) {
        await decoder.checkStatus();
        continue;
      }
      let err: unknown;
      await decoder.checkStatus().catch((e: unknown) => (err = e));
      expect(isDf11Error(err, 'corrupt-stream'), String(err)).toBe(true);
      expect(String(err)).toMatch(/count/);
    }
    badUnit.destroy();
    xBuf.destroy();
    out.destroy();
  });

  it('refuses a partials buffer that is too small and a 1-D matrix', async () => {
    const small = await gpuData(gpu, new Float32Array(4));
    const x = await gpuData(gpu, new Float32Array(64));
    await expect(gemv.bind(gpuUnit, 1, { x, out: x, partials: small })).rejects.toThrow(/partials/);
    const flat = await decoder.upload(encodeUnit('flat', [{ name: 'v', shape: [64], bits: normalBf16(64, 1) }]));
    await expect(gemv.bind(flat, 0, { x, out: x, partials })).rejects.toThrow(/2-D/);
    flat.destroy();
    small.destroy();
    x.destroy();
  });
});
