import { describe, expect, it } from 'vitest';
import { Df11Error, type ErrorCode } from '../src/errors.ts';
import { codeOf } from '../src/testing/error-code.ts';
import { bufferSource } from '../src/format/byte-source.ts';
import {
  asFloat32,
  asUint16,
  concatChunks,
  int64ToNumbers,
  SafetensorsFile,
  serializeSafetensors,
} from '../src/format/safetensors.ts';

/** A safetensors file from a header object and a data size, written by hand (not by our writer). */
function handMade(header: unknown, dataBytes: number, headerLengthOverride?: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, headerLengthOverride ?? json.length, true);
  out.set(json, 8);
  for (let i = 0; i < dataBytes; i++) out[8 + json.length + i] = (i * 37 + 11) & 0xff;
  return out;
}

const open = (bytes: Uint8Array) => SafetensorsFile.open(bufferSource(bytes), 'test.safetensors');

describe('safetensors reader', () => {
  const good = { __metadata__: { format: 'pt' }, a: { dtype: 'BF16', shape: [2, 3], data_offsets: [0, 12] }, b: { dtype: 'F32', shape: [1], data_offsets: [12, 16] } };

  it('reads a hand-made file', async () => {
    const bytes = handMade(good, 16);
    const f = await open(bytes);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect(f.tensors.get('a')).toMatchObject({ dtype: 'BF16', shape: [2, 3], byteLength: 12 });
    const dataStart = bytes.length - 16;
    expect([...(await f.read('b', 'F32'))]).toEqual([...bytes.subarray(dataStart + 12, dataStart + 16)]);
  });

  it('rejects each kind of bad input with the right code', async () => {
    const cases: Array<[string, Uint8Array, ErrorCode]> = [
      ['shorter than the length field', new Uint8Array(5), 'safetensors-header'],
      ['truncated data', handMade(good, 16).subarray(0, handMade(good, 16).length - 3), 'safetensors-bounds'],
      ['header length past the file', handMade(good, 16, 10_000), 'safetensors-header'],
      ['header length over 100 MB', handMade(good, 16, 200_000_000), 'safetensors-header'],
      ['bad JSON', handMade('{"a": {', 0), 'safetensors-header'],
      ['JSON array', handMade('[]', 0), 'safetensors-header'],
      ['offsets outside the file', handMade({ a: { dtype: 'U8', shape: [8], data_offsets: [100, 108] } }, 16), 'safetensors-bounds'],
      [
        'overlapping tensors',
        handMade({ a: { dtype: 'U8', shape: [8], data_offsets: [0, 8] }, b: { dtype: 'U8', shape: [8], data_offsets: [4, 12] } }, 16),
        'safetensors-bounds',
      ],
      ['unknown dtype', handMade({ a: { dtype: 'Q4', shape: [8], data_offsets: [0, 8] } }, 8), 'safetensors-header'],
      ['size disagrees with shape', handMade({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8), 'safetensors-header'],
      ['negative dimension', handMade({ a: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } }, 0), 'safetensors-header'],
      ['non-integer offsets', handMade({ a: { dtype: 'U8', shape: [1], data_offsets: [0.5, 1.5] } }, 2), 'safetensors-header'],
      ['metadata value not a string', handMade({ __metadata__: { n: 1 } }, 0), 'safetensors-header'],
    ];
    for (const [what, bytes, code] of cases) {
      expect(await codeOf(open(bytes)), what).toBe(code);
    }
  });

  it('names the file and the tensor in errors', async () => {
    const err = await open(handMade({ weights: { dtype: 'Q4', shape: [8], data_offsets: [0, 8] } }, 8)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Df11Error);
    expect((err as Error).message).toMatch(/test\.safetensors.*weights/);
  });

  it('checks dtype and presence on read', async () => {
    const f = await open(handMade(good, 16));
    expect(await codeOf(f.read('a', 'F32'))).toBe('dtype');
    expect(await codeOf(f.read('nope'))).toBe('missing-tensor');
  });

  it('accepts zero-size tensors sharing an offset', async () => {
    const f = await open(handMade({ e: { dtype: 'I64', shape: [0], data_offsets: [0, 0] }, a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] } }, 4));
    expect((await f.read('e', 'I64')).length).toBe(0);
  });
});

describe('safetensors writer', () => {
  it('round-trips tensors of mixed dtypes, aligned, header padded to 8 bytes', async () => {
    const rnd = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 131 + n) & 0xff);
    const tensors = [
      { name: 'odd.u8', dtype: 'U8' as const, shape: [7], data: rnd(7) },
      { name: 'w.bf16', dtype: 'BF16' as const, shape: [3, 5], data: rnd(30) },
      { name: 'pos.i64', dtype: 'I64' as const, shape: [2], data: new Uint8Array(new BigInt64Array([5n, 1234567890123n]).buffer) },
      { name: 'x.f32', dtype: 'F32' as const, shape: [3], data: new Uint8Array(new Float32Array([1.5, -2, 3.25]).buffer) },
    ];
    const file = concatChunks(serializeSafetensors(tensors, { format: 'pt' }));
    const headerLength = new DataView(file.buffer).getUint32(0, true);
    expect(headerLength % 8).toBe(0);
    const f = await open(file);
    expect(f.metadata).toEqual({ format: 'pt' });
    for (const t of tensors) {
      const info = f.tensors.get(t.name)!;
      expect(info.shape).toEqual(t.shape);
      expect(info.offset % (t.dtype === 'I64' ? 8 : t.dtype === 'F32' ? 4 : t.dtype === 'BF16' ? 2 : 1)).toBe(0);
      expect([...(await f.read(t.name, t.dtype))]).toEqual([...t.data]);
    }
    expect(int64ToNumbers(await f.read('pos.i64'))).toEqual([5, 1234567890123]);
    expect([...asFloat32(await f.read('x.f32'))]).toEqual([1.5, -2, 3.25]);
  });

  it('rejects data that does not match the shape', () => {
    expect(() => serializeSafetensors([{ name: 'a', dtype: 'F32', shape: [2], data: new Uint8Array(4) }])).toThrow(Df11Error);
  });
});

describe('typed views', () => {
  it('copies unaligned views instead of failing', () => {
    const backing = Uint8Array.from([9, 0x34, 0x12, 0x78, 0x56]);
    expect([...asUint16(backing.subarray(1))]).toEqual([0x1234, 0x5678]);
    expect(() => asUint16(backing.subarray(0, 3))).toThrow(Df11Error);
  });
});
