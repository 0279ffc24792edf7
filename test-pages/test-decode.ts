/**
 * Test page (test-pages/decode.html): DF11 GPU decode in a real browser, checked against the CPU
 * decoder. Writes a JSON report into #result (data-state "done" or "error") and window.df11DecodeResult.
 */
import { isDf11Error } from '../src/errors.ts';
import { decodeUnit } from '../src/format/df11-cpu-decoder.ts';
import { encodeUnit } from '../src/format/df11-encoder.ts';
import type { Df11Unit } from '../src/format/df11-types.ts';
import { Df11Decoder } from '../src/gpu/df11-decode.ts';
import { readMatrix, readRows, readUnit, readUnitOnce } from '../src/gpu/df11-readback.ts';
import { Gpu } from '../src/gpu/gpu.ts';
import { browserShaders } from '../src/gpu/shaders-browser.ts';
import { firstMismatch } from '../src/testing/compare.ts';
import { normalBf16, rng } from '../src/testing/random-weights.ts';

export interface DecodeReport {
  adapter: string;
  elements: number;
  /** First index where GPU and CPU disagree, -1 when equal; per check. */
  unitMismatch: number;
  matrixMismatch: number[];
  rowsMismatch: number;
  /** Error code the kernel reported for a zeroed code length ('corrupt-stream' expected). */
  corruptCode: string;
  ms: { encode: number; gpuDecode: number; cpuDecode: number };
}

declare global {
  interface Window {
    df11DecodeResult?: DecodeReport | { error: string };
  }
}

async function run(): Promise<DecodeReport> {
  const params = new URLSearchParams(location.search);
  const n = Number(params.get('n') ?? 200_003);
  const seed = Number(params.get('seed') ?? 1);
  const hidden = 256;
  const rows = Math.max(2, Math.floor(n / hidden));
  // an odd-sized matrix first, so the embedding-like second matrix starts at an odd offset
  const matrices = [
    { name: 'head', shape: [3, 7], bits: normalBf16(21, seed) },
    { name: 'embed', shape: [rows, hidden], bits: normalBf16(rows * hidden, seed + 1) },
  ];
  let t = performance.now();
  const unit = encodeUnit('page', matrices);
  const encodeMs = performance.now() - t;
  t = performance.now();
  const cpu = decodeUnit(unit);
  const cpuMs = performance.now() - t;

  const gpu = await Gpu.create({ shaders: browserShaders });
  const decoder = await Df11Decoder.create(gpu);
  const gpuUnit = await decoder.upload(unit);
  t = performance.now();
  const whole = await readUnit(decoder, gpuUnit);
  const gpuMs = performance.now() - t;
  const matrixMismatch: number[] = [];
  for (const [i, m] of unit.matrices.entries()) {
    matrixMismatch.push(firstMismatch(await readMatrix(decoder, gpuUnit, i), cpu.subarray(m.offset, m.offset + m.size)));
  }
  const r = rng(seed);
  const ids = new Uint32Array([0, rows - 1, ...Array.from({ length: 8 }, () => Math.floor(r() * rows)), 0]);
  const gotRows = await readRows(decoder, gpuUnit, 1, ids);
  const wantRows = new Uint16Array(ids.length * hidden);
  const embedOffset = unit.matrices[1].offset;
  ids.forEach((id, k) => wantRows.set(cpu.subarray(embedOffset + id * hidden, embedOffset + (id + 1) * hidden), k * hidden));
  gpuUnit.destroy();

  const corruptCode = await decodeCorrupt(decoder, unit, cpu[0]);
  decoder.destroy();
  gpu.destroy();
  const info = gpu.adapterInfo;
  return {
    adapter: [info.vendor, info.architecture, info.description].filter(Boolean).join(' '),
    elements: cpu.length,
    unitMismatch: firstMismatch(whole, cpu),
    matrixMismatch,
    rowsMismatch: firstMismatch(gotRows, wantRows),
    corruptCode,
    ms: { encode: Math.round(encodeMs), gpuDecode: Math.round(gpuMs), cpuDecode: Math.round(cpuMs) },
  };
}

/** Zero the code length of the first weight's exponent: the kernel must report corrupt data. */
async function decodeCorrupt(decoder: Df11Decoder, unit: Df11Unit, firstWeight: number): Promise<string> {
  const k = unit.luts.length / 256;
  const luts = unit.luts.slice();
  luts[(k - 1) * 256 + ((firstWeight >> 7) & 0xff)] = 0;
  try {
    await readUnitOnce(decoder, { ...unit, luts });
    return 'none';
  } catch (e) {
    return isDf11Error(e) ? e.code : String(e);
  }
}

const out = document.getElementById('result')!;
run().then(
  (report) => {
    window.df11DecodeResult = report;
    out.textContent = JSON.stringify(report, null, 2);
    out.dataset.state = 'done';
  },
  (e: unknown) => {
    window.df11DecodeResult = { error: String(e) };
    out.textContent = String(e);
    out.dataset.state = 'error';
  },
);
