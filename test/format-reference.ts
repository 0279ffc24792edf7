/**
 * Test-only reference: reads an HF safetensors file with plain Node Buffer code, independent of
 * src/format/safetensors.ts, so comparisons against it can catch reader bugs.
 */
import { readFileSync } from 'node:fs';

export interface RefTensor {
  dtype: string;
  shape: number[];
  bytes: Buffer;
}

export function readReferenceTensors(path: string): Map<string, RefTensor> {
  const file = readFileSync(path);
  const n = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const out = new Map<string, RefTensor>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    out.set(name, { dtype: t.dtype, shape: t.shape, bytes: file.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]) });
  }
  return out;
}

/** BF16 bits of a reference tensor. */
export function refBits(t: RefTensor): Uint16Array {
  const copy = Uint8Array.from(t.bytes);
  return new Uint16Array(copy.buffer, 0, copy.byteLength / 2);
}
