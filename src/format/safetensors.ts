/**
 * safetensors: an 8-byte little-endian header length, a JSON header
 * `{ "__metadata__"?: {string: string}, name: { dtype, shape, data_offsets: [begin, end] } }`, then the data
 * (offsets relative to the end of the header). Reading is lazy: only the header is read on open, and each
 * tensor is read on demand from the ByteSource, so a multi-GB file is never held whole.
 */
import { Df11Error } from '../errors.ts';
import type { ByteSource } from './byte-source.ts';

export const DTYPE_SIZES = {
  BF16: 2,
  F16: 2,
  F32: 4,
  F64: 8,
  I8: 1,
  U8: 1,
  I16: 2,
  U16: 2,
  I32: 4,
  U32: 4,
  I64: 8,
  U64: 8,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
} as const;

export type Dtype = keyof typeof DTYPE_SIZES;

export function isDtype(value: unknown): value is Dtype {
  return typeof value === 'string' && Object.hasOwn(DTYPE_SIZES, value);
}

/** A header larger than this is treated as corrupt (real headers are KBs; 100 MB bounds a hostile length). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Absolute byte offset of the data in the file. */
  offset: number;
  byteLength: number;
}

export class SafetensorsFile {
  private constructor(
    readonly fileName: string,
    private readonly source: ByteSource,
    readonly tensors: Map<string, TensorInfo>,
    readonly metadata: Record<string, string>,
  ) {}

  /** Reads and validates the header; tensor data stays in the source until `read`. */
  static async open(source: ByteSource, fileName: string): Promise<SafetensorsFile> {
    if (source.size < 8) {
      throw new Df11Error('safetensors-header', `${fileName}: ${source.size} bytes, too short for a safetensors header`);
    }
    const lengthBytes = await source.read(0, 8);
    const view = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8);
    const headerLength = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
    if (headerLength > MAX_HEADER_BYTES || headerLength > source.size - 8) {
      throw new Df11Error(
        'safetensors-header',
        `${fileName}: header length ${headerLength} exceeds ${headerLength > MAX_HEADER_BYTES ? `the ${MAX_HEADER_BYTES}-byte limit` : `the file (${source.size} bytes)`}`,
      );
    }
    const headerBytes = await source.read(8, 8 + headerLength);
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
    } catch (e) {
      throw new Df11Error('safetensors-header', `${fileName}: header is not valid UTF-8 JSON (${(e as Error).message})`, {
        cause: e,
      });
    }
    const dataStart = 8 + headerLength;
    const { tensors, metadata } = parseHeader(header, fileName, source.size - dataStart, dataStart);
    return new SafetensorsFile(fileName, source, tensors, metadata);
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new Df11Error('missing-tensor', `${this.fileName}: no tensor '${name}'`);
    return info;
  }

  /** The raw bytes of one tensor; checks the dtype when one is expected. */
  async read(name: string, expectDtype?: Dtype): Promise<Uint8Array> {
    const info = this.info(name);
    if (expectDtype !== undefined && info.dtype !== expectDtype) {
      throw new Df11Error('dtype', `${this.fileName}: tensor '${name}' is ${info.dtype}, expected ${expectDtype}`);
    }
    const bytes = await this.source.read(info.offset, info.offset + info.byteLength);
    if (bytes.byteLength !== info.byteLength) {
      throw new Df11Error('safetensors-bounds', `${this.fileName}: tensor '${name}' was cut short (file truncated?)`);
    }
    return bytes;
  }
}

function parseHeader(
  header: unknown,
  fileName: string,
  dataSize: number,
  dataStart: number,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  const bad = (message: string): Df11Error => new Df11Error('safetensors-header', `${fileName}: ${message}`);
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw bad('header is not a JSON object');
  const tensors = new Map<string, TensorInfo>();
  const metadata: Record<string, string> = {};
  const ranges: Array<{ name: string; begin: number; end: number }> = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw bad('__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw bad(`__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw bad(`tensor '${name}' is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (!isDtype(dtype)) throw bad(`tensor '${name}' has unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every(isCount)) throw bad(`tensor '${name}' has an invalid shape`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
      throw bad(`tensor '${name}' has invalid data_offsets`);
    }
    const [begin, end] = offsets as [number, number];
    const elements = (shape as number[]).reduce((a, b) => a * b, 1);
    const expected = elements * DTYPE_SIZES[dtype];
    if (!Number.isSafeInteger(expected) || end - begin !== expected) {
      throw bad(`tensor '${name}' (${dtype} [${shape.join(', ')}]) spans ${end - begin} bytes, expected ${expected}`);
    }
    if (end > dataSize) {
      throw new Df11Error(
        'safetensors-bounds',
        `${fileName}: tensor '${name}' ends at data byte ${end}, past the end of the data (${dataSize} bytes)`,
      );
    }
    tensors.set(name, { name, dtype, shape: shape as number[], offset: dataStart + begin, byteLength: expected });
    ranges.push({ name, begin, end });
  }
  checkExtent(ranges, fileName, dataSize);
  return { tensors, metadata };
}

/**
 * The tensors must tile the data exactly, as the format requires: no overlap, no hole, and the last one
 * ends at the end of the file (a header length off by a byte would otherwise shift every tensor silently).
 */
function checkExtent(ranges: Array<{ name: string; begin: number; end: number }>, fileName: string, dataSize: number): void {
  ranges.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const bounds = (message: string): Df11Error => new Df11Error('safetensors-bounds', `${fileName}: ${message}`);
  let at = 0;
  let prev = '';
  for (const r of ranges) {
    if (r.begin < at) throw bounds(`tensors '${prev}' and '${r.name}' overlap`);
    if (r.begin > at) throw bounds(`data bytes [${at}, ${r.begin}) before tensor '${r.name}' belong to no tensor`);
    at = r.end;
    prev = r.name;
  }
  if (at !== dataSize) throw bounds(`the tensors end at data byte ${at}, but the file holds ${dataSize} data bytes`);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

// ---- typed views -------------------------------------------------------------------------------

/** `bytes` as a typed array of `T`, copying only when the view is not aligned for `T`. */
function view<T>(bytes: Uint8Array, size: number, make: (buffer: ArrayBufferLike, offset: number, length: number) => T): T {
  if (bytes.byteLength % size !== 0) {
    throw new Df11Error('dtype', `${bytes.byteLength} bytes is not a whole number of ${size}-byte elements`);
  }
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  return make(aligned.buffer, aligned.byteOffset, aligned.byteLength / size);
}

/** BF16 (or F16/U16) bytes as u16 bit patterns. */
export function asUint16(bytes: Uint8Array): Uint16Array {
  return view(bytes, 2, (b, o, n) => new Uint16Array(b, o, n));
}

export function asUint32(bytes: Uint8Array): Uint32Array {
  return view(bytes, 4, (b, o, n) => new Uint32Array(b, o, n));
}

export function asFloat32(bytes: Uint8Array): Float32Array {
  return view(bytes, 4, (b, o, n) => new Float32Array(b, o, n));
}

/** I64 values as numbers; throws if one is outside the safe integer range. */
export function int64ToNumbers(bytes: Uint8Array): number[] {
  const values = view(bytes, 8, (b, o, n) => new BigInt64Array(b, o, n));
  return Array.from(values, (v) => {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new Df11Error('dtype', `I64 value ${v} is outside the safe integer range`);
    }
    return Number(v);
  });
}

/** A typed array's bytes, without copying. */
export function bytesOf(array: ArrayBufferView): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

// ---- writer ------------------------------------------------------------------------------------

export interface TensorData {
  name: string;
  dtype: Dtype;
  shape: number[];
  data: Uint8Array;
}

/**
 * A safetensors file as chunks (header, then each tensor's bytes), so large tensors are not copied.
 * Tensors are laid out by descending element size (stable), so every tensor is aligned to its element
 * size; the header is padded with spaces to a multiple of 8 bytes, like the reference implementation.
 */
export function serializeSafetensors(tensors: TensorData[], metadata?: Record<string, string>): Uint8Array[] {
  const ordered = [...tensors].sort((a, b) => DTYPE_SIZES[b.dtype] - DTYPE_SIZES[a.dtype]);
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  const names = new Set<string>();
  for (const t of ordered) {
    if (names.has(t.name)) throw new Df11Error('safetensors-header', `duplicate tensor name '${t.name}'`);
    names.add(t.name);
    const expected = t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZES[t.dtype];
    if (t.data.byteLength !== expected) {
      throw new Df11Error('safetensors-header', `tensor '${t.name}' has ${t.data.byteLength} bytes, its shape needs ${expected}`);
    }
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + expected] };
    offset += expected;
  }
  let json = JSON.stringify(header);
  let jsonBytes = new TextEncoder().encode(json);
  const pad = (8 - (jsonBytes.byteLength % 8)) % 8;
  if (pad > 0) {
    json += ' '.repeat(pad);
    jsonBytes = new TextEncoder().encode(json);
  }
  const prefix = new Uint8Array(8 + jsonBytes.byteLength);
  const dv = new DataView(prefix.buffer);
  dv.setUint32(0, jsonBytes.byteLength, true);
  dv.setUint32(4, 0, true);
  prefix.set(jsonBytes, 8);
  return [prefix, ...ordered.map((t) => t.data)];
}

/** Total byte length of chunks. */
export function chunksLength(chunks: Uint8Array[]): number {
  return chunks.reduce((a, c) => a + c.byteLength, 0);
}

/** Concatenate chunks into one buffer (small files, tests). */
export function concatChunks(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunksLength(chunks));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
