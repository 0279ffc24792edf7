/**
 * DF11 encoder: BF16 matrices → one compression unit in the official DFloat11 layout (DESIGN.md §1).
 * Two passes over the weights: an exponent histogram, then one encoding pass that writes the
 * bitstream, the sign/mantissa bytes, the per-window gaps and the per-block output positions.
 */
import { Df11Error } from '../errors.ts';
import { BYTES_PER_BLOCK, GAP_BYTES_PER_BLOCK, THREADS_PER_BLOCK, type Df11Matrix, type Df11Unit } from './df11-types.ts';
import { addExponentHistogram, buildUnitCode, SYMBOL_COUNT } from './huffman.ts';

export interface MatrixInput {
  name: string;
  shape: number[];
  /** Raw BF16 bits, row-major.  (product of shape) */
  bits: Uint16Array;
}

const WINDOW_BITS = 64;
const BLOCK_BITS = BYTES_PER_BLOCK * 8;

/** Encode the matrices (in order) as one unit. Throws Df11Error('unencodable') for exponents >= 240. */
export function encodeUnit(unitName: string, matrices: MatrixInput[]): Df11Unit {
  const counts = new Uint32Array(256);
  const layout: Df11Matrix[] = [];
  let n = 0;
  for (const m of matrices) {
    const size = m.shape.reduce((a, b) => a * b, 1);
    if (size !== m.bits.length) {
      throw new Df11Error('bad-request', `${m.name}: shape [${m.shape}] holds ${size} elements, got ${m.bits.length}`);
    }
    const before = countUnencodable(counts);
    addExponentHistogram(m.bits, counts);
    if (countUnencodable(counts) !== before) {
      throw new Df11Error('unencodable', `${m.name}: holds Inf, NaN or |x| >= 2^113 (exponent >= 240), which DF11 cannot code`);
    }
    layout.push({ name: m.name, shape: [...m.shape], offset: n, size });
    n += size;
  }
  const { lengths, codes, luts } = buildUnitCode(counts, unitName);

  let totalBits = 0;
  for (let s = 0; s < SYMBOL_COUNT; s++) totalBits += counts[s] * lengths[s];
  const nBytes = Math.ceil(totalBits / 8);
  const nBlocks = Math.ceil(nBytes / BYTES_PER_BLOCK);
  const encodedExponent = new Uint8Array(nBytes);
  const signMantissa = new Uint8Array(n);
  const gaps = new Uint8Array(GAP_BYTES_PER_BLOCK * nBlocks);
  // A block in which no code starts (only possible at the very end) keeps n.
  const outputPositions = new Uint32Array(nBlocks + 1).fill(n);

  let acc = 0; // pending bits: the low `accBits` bits (higher bits are stale and ignored)
  let accBits = 0; // 0..31 between codes; every full 32 bits go out as one big-endian word
  let out = 0; // next byte of encodedExponent
  let bit = 0; // stream position of the next code
  let nextWindow = 0; // start bit of the next window that has not seen a code start yet
  let thread = 0;
  let index = 0;
  for (const m of matrices) {
    const src = m.bits;
    const len = src.length;
    for (let i = 0; i < len; i++, index++) {
      const w = src[i];
      const e = (w >>> 7) & 0xff;
      signMantissa[index] = ((w >>> 8) & 0x80) | (w & 0x7f);
      const l = lengths[e];
      const c = codes[e];
      if (bit >= nextWindow) {
        // First code starting in window `thread`: its offset there is the gap (< 32, codes are ≤ 32 bits).
        const g = bit - nextWindow;
        const gb = thread * 5;
        const v = g << (11 - (gb & 7));
        gaps[gb >>> 3] |= v >>> 8;
        if ((gb & 7) > 3) gaps[(gb >>> 3) + 1] |= v & 0xff;
        if ((thread & (THREADS_PER_BLOCK - 1)) === 0) outputPositions[thread / THREADS_PER_BLOCK] = index;
        thread++;
        nextWindow += WINDOW_BITS;
      }
      bit += l;
      const free = 32 - accBits; // 1..32
      if (l < free) {
        acc = (acc << l) | c;
        accBits += l;
      } else {
        // Complete a word with the top `free` bits of the code; keep its low `rest` bits. A full word
        // holds stream bits only, so it never reaches past nBytes.
        const rest = l - free;
        const word = free === 32 ? c : (acc << free) | (c >>> rest);
        encodedExponent[out] = word >>> 24;
        encodedExponent[out + 1] = word >>> 16;
        encodedExponent[out + 2] = word >>> 8;
        encodedExponent[out + 3] = word;
        out += 4;
        acc = c;
        accBits = rest;
      }
    }
  }
  if (accBits > 0) {
    const word = acc << (32 - accBits);
    for (let shift = 24; out < nBytes && shift >= 0; shift -= 8) encodedExponent[out++] = word >>> shift;
  }
  if (out !== nBytes || bit !== totalBits || bit > nBlocks * BLOCK_BITS) {
    throw new Df11Error('internal', `${unitName}: encoder wrote ${out} bytes / ${bit} bits, expected ${nBytes} / ${totalBits}`);
  }
  outputPositions[nBlocks] = n;
  return {
    name: unitName,
    encodedExponent,
    signMantissa,
    luts,
    gaps,
    outputPositions,
    splitPositions: layout.slice(1).map((m) => m.offset),
    matrices: layout,
  };
}

function countUnencodable(counts: Uint32Array): number {
  let total = 0;
  for (let s = SYMBOL_COUNT; s < 256; s++) total += counts[s];
  return total;
}
