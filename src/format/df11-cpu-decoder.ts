/**
 * Bit-exact CPU reference decoder for DF11 units. It follows the parallel contract of the GPU
 * kernel rather than decoding from bit 0: every 64-bit thread window starts at its own gap, every
 * 4096-byte block places its codes from outputPositions[b], and every assumption the kernel makes
 * is checked (gaps agree with where the previous window's last code ended, per-block code counts
 * agree with outputPositions, table walks stay inside the tables and 4 levels, reached symbols have
 * a non-zero length, needed codes lie inside the stream). Violations are Df11Error('corrupt-stream').
 * Codes after the n-th element in the last block (padding) are not inspected.
 */
import { Df11Error } from '../errors.ts';
import {
  BYTES_PER_BLOCK,
  BYTES_PER_THREAD,
  GAP_BYTES_PER_BLOCK,
  LUT_POINTER_BASE,
  MAX_CODE_LENGTH,
  THREADS_PER_BLOCK,
  type Df11Unit,
} from './df11-types.ts';

const WINDOW_BITS = 64;
const MAX_LEVELS = 4;
/** Decode tables (k-1) addressable: the root plus 16 child tables. */
const MAX_DECODE_TABLES = 1 + (256 - LUT_POINTER_BASE);

function corrupt(unit: Df11Unit, message: string): Df11Error {
  return new Df11Error('corrupt-stream', `${unit.name}: ${message}`);
}

/** Structural checks (lengths of every array agree with each other and the matrices). */
export function validateUnit(unit: Df11Unit): void {
  const n = unit.signMantissa.length;
  let offset = 0;
  for (const m of unit.matrices) {
    const size = m.shape.reduce((a, b) => a * b, 1);
    if (m.size !== size || m.offset !== offset) {
      throw corrupt(unit, `matrix ${m.name} (shape [${m.shape}], offset ${m.offset}, size ${m.size}) does not continue the concatenation at ${offset}`);
    }
    offset += size;
  }
  if (offset !== n) throw corrupt(unit, `matrices hold ${offset} elements but sign_mantissa has ${n}`);
  const splits = unit.matrices.slice(1).map((m) => m.offset);
  if (unit.splitPositions.length !== splits.length || unit.splitPositions.some((s, i) => s !== splits[i])) {
    throw corrupt(unit, `split_positions [${unit.splitPositions}] disagree with the matrix offsets [${splits}]`);
  }
  validateStream(unit);
}

/** The stream arrays' structure alone (the GPU decoder checks this much; its matrices may be views). */
export function validateStream(unit: Df11Unit): void {
  const n = unit.signMantissa.length;
  const nBytes = unit.encodedExponent.length;
  const nBlocks = Math.ceil(nBytes / BYTES_PER_BLOCK);
  if (unit.luts.length % 256 !== 0 || unit.luts.length < 512 || unit.luts.length > 256 * (MAX_DECODE_TABLES + 1)) {
    throw corrupt(unit, `luts has ${unit.luts.length} bytes; expected k*256 with 2 <= k <= ${MAX_DECODE_TABLES + 1}`);
  }
  if (unit.gaps.length !== GAP_BYTES_PER_BLOCK * nBlocks) {
    throw corrupt(unit, `gaps has ${unit.gaps.length} bytes; ${nBytes} stream bytes need ${GAP_BYTES_PER_BLOCK * nBlocks}`);
  }
  const op = unit.outputPositions;
  if (op.length !== nBlocks + 1) {
    throw corrupt(unit, `output_positions has ${op.length} entries; ${nBlocks} blocks need ${nBlocks + 1}`);
  }
  if (op[0] !== 0 || op[nBlocks] !== n) {
    throw corrupt(unit, `output_positions must run from 0 to ${n}, got ${op[0]}..${op[nBlocks]}`);
  }
  for (let b = 0; b < nBlocks; b++) {
    if (op[b + 1] < op[b]) throw corrupt(unit, `output_positions decrease at block ${b} (${op[b]} > ${op[b + 1]})`);
  }
  // Every code has 1..32 bits.
  if (nBytes * 8 < n || nBytes > 4 * (n + 1) + 8) {
    throw corrupt(unit, `${nBytes} stream bytes cannot hold ${n} codes of 1..32 bits`);
  }
}

/**
 * The decode tables folded into one 16-bit lookup: entry v (the next 16 stream bits) holds
 * symbol | length << 8 when the code is resolved within two table levels and at most 16 bits,
 * otherwise -1 (walk the byte tables, which also produces the precise error for bad entries).
 * Cached per luts array: unit arrays are treated as immutable once decoded.
 */
const fastTables = new WeakMap<Uint8Array, Int32Array>();

function fastTable(unit: Df11Unit): Int32Array {
  let table = fastTables.get(unit.luts);
  if (table) return table;
  const luts = unit.luts;
  const k = luts.length >>> 8;
  const lengthRow = (k - 1) * 256;
  table = new Int32Array(65536).fill(-1);
  for (let hi = 0; hi < 256; hi++) {
    const d0 = luts[hi];
    if (d0 < LUT_POINTER_BASE) {
      const len = luts[lengthRow + d0];
      if (len > 0 && len <= 8) table.fill(d0 | (len << 8), hi << 8, (hi + 1) << 8);
      continue;
    }
    const t = 256 - d0;
    if (t >= k - 1) continue;
    for (let lo = 0; lo < 256; lo++) {
      const d1 = luts[t * 256 + lo];
      if (d1 >= LUT_POINTER_BASE) continue;
      const len = luts[lengthRow + d1];
      if (len > 0 && len <= 16) table[(hi << 8) | lo] = d1 | (len << 8);
    }
  }
  fastTables.set(unit.luts, table);
  return table;
}

/** Full byte-table walk for the 32 stream bits `win` at stream bit `at`: symbol | length << 8. */
function walk(unit: Df11Unit, win: number, at: number): number {
  const luts = unit.luts;
  const k = luts.length >>> 8;
  let d = luts[win >>> 24];
  let level = 0;
  while (d >= LUT_POINTER_BASE) {
    level++;
    if (level >= MAX_LEVELS) throw corrupt(unit, `code at stream bit ${at}: table pointer chain deeper than ${MAX_LEVELS} levels`);
    const t = 256 - d;
    if (t >= k - 1) throw corrupt(unit, `code at stream bit ${at}: pointer to table ${t}, past the ${k - 1} decode tables`);
    d = luts[t * 256 + ((win >>> (24 - 8 * level)) & 0xff)];
  }
  const len = luts[(k - 1) * 256 + d];
  if (len === 0) throw corrupt(unit, `code at stream bit ${at}: symbol ${d} has code length 0`);
  if (len > MAX_CODE_LENGTH) throw corrupt(unit, `code at stream bit ${at}: symbol ${d} has code length ${len} > ${MAX_CODE_LENGTH}`);
  return d | (len << 8);
}

/**
 * Decode blocks [b0, b1) into `out`, whose element 0 is unit element outputPositions[b0].
 * Assumes validateUnit passed.
 */
function decodeBlocks(unit: Df11Unit, b0: number, b1: number, out: Uint16Array): void {
  const n = unit.signMantissa.length;
  const nBytes = unit.encodedExponent.length;
  const nBits = nBytes * 8;
  const nBlocks = unit.outputPositions.length - 1;
  const op = unit.outputPositions;
  const gaps = unit.gaps;
  const sm = unit.signMantissa;
  const fast = fastTable(unit);
  // The covered stream bytes, the 4-byte lookahead past them (a code may run into the next block),
  // then zeros, so the 12 bytes read per window never fall out of range.
  const byte0 = b0 * BYTES_PER_BLOCK;
  const byte1 = Math.min(b1 * BYTES_PER_BLOCK + 4, nBytes);
  const stream = new Uint8Array(byte1 - byte0 + 16);
  stream.set(unit.encodedExponent.subarray(byte0, byte1));
  const base = op[b0];
  let expected = -1; // where the previous window's last code ended (stream bit), -1 before the first
  for (let b = b0; b < b1; b++) {
    let pos = op[b];
    const last = b === nBlocks - 1;
    const limit = last ? n : op[b + 1];
    for (let tb = 0; tb < THREADS_PER_BLOCK && pos < n; tb++) {
      const thread = b * THREADS_PER_BLOCK + tb;
      const windowStart = thread * WINDOW_BITS; // stream bit; a Number, exact beyond 2^32
      if (windowStart >= nBits) break;
      const gb = thread * 5;
      const gq = gb >>> 3;
      const pair = (gaps[gq] << 8) | (gq + 1 < gaps.length ? gaps[gq + 1] : 0);
      let o = (pair >>> (11 - (gb & 7))) & 31; // bit offset in the window
      if (expected >= 0 && windowStart + o !== expected) {
        throw corrupt(unit, `gap of thread ${thread} puts its first code at stream bit ${windowStart + o}, but the previous code ends at ${expected}`);
      }
      // The window's 64 bits and 32 bits of lookahead as three big-endian words.
      const q = thread * BYTES_PER_THREAD - byte0;
      const w0 = (stream[q] << 24) | (stream[q + 1] << 16) | (stream[q + 2] << 8) | stream[q + 3];
      const w1 = (stream[q + 4] << 24) | (stream[q + 5] << 16) | (stream[q + 6] << 8) | stream[q + 7];
      const w2 = (stream[q + 8] << 24) | (stream[q + 9] << 16) | (stream[q + 10] << 8) | stream[q + 11];
      while (o < WINDOW_BITS) {
        // bounded: every code advances o by at least 1 bit
        if (pos >= limit) {
          if (last) break;
          throw corrupt(unit, `block ${b} holds more codes than output_positions gives it (${op[b + 1] - op[b]})`);
        }
        const win =
          o < 32 ? (o === 0 ? w0 : (w0 << o) | (w1 >>> (32 - o))) : o === 32 ? w1 : (w1 << (o - 32)) | (w2 >>> (64 - o));
        let e = fast[win >>> 16];
        if (e < 0) e = walk(unit, win >>> 0, windowStart + o);
        const len = e >>> 8;
        if (windowStart + o + len > nBits) {
          throw corrupt(unit, `stream truncated: code of element ${pos} at bit ${windowStart + o} (${len} bits) runs past the ${nBytes}-byte stream`);
        }
        const s = sm[pos];
        out[pos - base] = ((s & 0x80) << 8) | ((e & 0xff) << 7) | (s & 0x7f);
        pos++;
        o += len;
      }
      expected = windowStart + o;
    }
    if (last ? pos < n : pos !== limit) {
      throw corrupt(
        unit,
        last
          ? `stream ends after ${pos} of ${n} elements`
          : `block ${b} holds ${pos - op[b]} codes but output_positions gives it ${limit - op[b]}`,
      );
    }
  }
}

/** All elements of the unit as BF16 bits. Bit-exact; corrupt data -> Df11Error('corrupt-stream'), never a hang. */
export function decodeUnit(unit: Df11Unit): Uint16Array {
  validateUnit(unit);
  const n = unit.signMantissa.length;
  const out = new Uint16Array(n);
  const nBlocks = unit.outputPositions.length - 1;
  if (nBlocks > 0) decodeBlocks(unit, 0, nBlocks, out);
  return out;
}

/** Elements [begin, end) only, decoding just the 4096-byte blocks that cover them (via outputPositions). */
export function decodeElements(unit: Df11Unit, begin: number, end: number): Uint16Array {
  validateUnit(unit);
  const n = unit.signMantissa.length;
  if (!(Number.isInteger(begin) && Number.isInteger(end) && 0 <= begin && begin <= end && end <= n)) {
    throw new Df11Error('bad-request', `${unit.name}: element range [${begin}, ${end}) outside [0, ${n})`);
  }
  if (begin === end) return new Uint16Array(0);
  const op = unit.outputPositions;
  const nBlocks = op.length - 1;
  // b0: last block whose first element is <= begin; b1: first block boundary at or after end.
  let lo = 0;
  let hi = nBlocks - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (op[mid] <= begin) lo = mid;
    else hi = mid - 1;
  }
  const b0 = lo;
  lo = b0 + 1;
  hi = nBlocks;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (op[mid] >= end) hi = mid;
    else lo = mid + 1;
  }
  const b1 = lo;
  const covered = new Uint16Array(op[b1] - op[b0]);
  decodeBlocks(unit, b0, b1, covered);
  return covered.slice(begin - op[b0], end - op[b0]);
}
