/**
 * One-shot DF11 decodes read back to the CPU, with the decoder's status checked after each: for tests,
 * `df11 verify` / `decompress`, the fuzz targets and benchmarks. The forward never reads weights back; it
 * records the decoder's dispatches itself (src/gpu/df11-decode.ts).
 */
import { Df11Error } from '../errors.ts';
import type { Df11Unit } from '../format/df11-types.ts';
import type { Df11Decoder, GpuDf11Unit } from './df11-decode.ts';

/** Elements [begin, end) of an uploaded unit (any range: decoded in pieces that fit one buffer). */
export async function readRange(decoder: Df11Decoder, unit: GpuDf11Unit, begin: number, end: number): Promise<Uint16Array> {
  if (!(begin >= 0 && end <= unit.n && begin <= end)) throw new Df11Error('bad-request', `range [${begin}, ${end}) outside unit ${unit.name} of ${unit.n}`);
  const gpu = decoder.gpu;
  const result = new Uint16Array(end - begin);
  const piece = Math.floor(gpu.limits.maxBufferSize / 256) * 128;
  for (let b = begin; b < end; b += piece) {
    const e = Math.min(end, b + piece);
    const job = await decoder.createRangeJob(unit, b, e);
    const out = await gpu.createBuffer({ label: 'df11 range out', size: job.outputBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const encoder = gpu.device.createCommandEncoder();
    decoder.encodeRange(encoder, job, out);
    gpu.submit([encoder.finish()]);
    const words = await gpu.read(out);
    result.set(new Uint16Array(words, 0, e - b), b - begin);
    out.destroy();
    job.destroy();
  }
  await decoder.checkStatus();
  return result;
}

/** Matrix `matrixIndex` of an uploaded unit. */
export async function readMatrix(decoder: Df11Decoder, unit: GpuDf11Unit, matrixIndex: number): Promise<Uint16Array> {
  const m = unit.source.matrices[matrixIndex];
  if (!m) throw new Df11Error('bad-request', `unit ${unit.name} has no matrix ${matrixIndex}`);
  return readRange(decoder, unit, m.offset, m.offset + m.size);
}

/** Every element of an uploaded unit. */
export async function readUnit(decoder: Df11Decoder, unit: GpuDf11Unit): Promise<Uint16Array> {
  return readRange(decoder, unit, 0, unit.n);
}

/** Upload, decode every element, free: a one-shot unit decoder (verify, decompress). */
export async function readUnitOnce(decoder: Df11Decoder, unit: Df11Unit): Promise<Uint16Array> {
  const gpuUnit = await decoder.upload(unit);
  try {
    return await readUnit(decoder, gpuUnit);
  } finally {
    gpuUnit.destroy();
  }
}

/** Rows `tokenIds` of matrix `matrixIndex`: (n_tokens, row_len). */
export async function readRows(decoder: Df11Decoder, unit: GpuDf11Unit, matrixIndex: number, tokenIds: Uint32Array): Promise<Uint16Array> {
  const gpu = decoder.gpu;
  const job = await decoder.createRowJob(unit, matrixIndex, Math.max(1, tokenIds.length));
  job.setTokens(tokenIds);
  const out = await gpu.createBuffer({ label: 'df11 rows out', size: job.outputBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const encoder = gpu.device.createCommandEncoder();
  decoder.encodeRows(encoder, job, out);
  gpu.submit([encoder.finish()]);
  const words = await gpu.read(out);
  out.destroy();
  job.destroy();
  await decoder.checkStatus();
  return new Uint16Array(words, 0, tokenIds.length * job.rowLen);
}
