/**
 * The Huffman code of a DF11 unit: exponent histogram → length-limited code lengths → canonical
 * codes → the byte-walk decode tables ("luts") of the official format (DESIGN.md §1).
 *
 * Code lengths come from package-merge, which gives an optimal prefix code under the 32-bit cap
 * (plain Huffman whenever Huffman already fits). The LUT scheme can address at most 16 child
 * tables (pointer values 240..255); if a code would need more, the cap is lowered step by step
 * (31, 30, …, 8 bits). At 8 bits no child table is needed at all and all 240 encodable symbols fit,
 * so this always terminates with a valid code. Real weight histograms never get near that limit.
 */
import { Df11Error } from '../errors.ts';
import { LUT_POINTER_BASE, MAX_CODE_LENGTH } from './df11-types.ts';

/** Symbols are exponents; 240..255 are reserved for table pointers. */
export const SYMBOL_COUNT = LUT_POINTER_BASE;
/** Child tables addressable by pointer values 240..255 (pointer 256 - j → table j, j = 1..16). */
export const MAX_CHILD_TABLES = 256 - LUT_POINTER_BASE;

export interface HuffmanCode {
  /** Code length per symbol, 0 = symbol absent.  (256) */
  lengths: Uint8Array;
  /** Canonical code per symbol, right-aligned in `lengths[s]` bits, MSB first.  (256) */
  codes: Uint32Array;
}

/** Adds the exponent histogram of BF16 bits into `counts` (256 bins). */
export function addExponentHistogram(bits: Uint16Array, counts: Uint32Array): void {
  const n = bits.length;
  for (let i = 0; i < n; i++) counts[(bits[i] >>> 7) & 0xff]++;
}

interface PmItem {
  weight: number;
  /** Leaf symbol, or -1 for a package of two items. */
  symbol: number;
  left: PmItem | null;
  right: PmItem | null;
}

/**
 * Optimal prefix-code lengths for `counts` (one per symbol, 0 = absent) with no code longer than
 * `maxLength`, by package-merge. A lone symbol gets length 1 (Huffman would give it 0 bits, which
 * the stream format cannot represent).
 */
export function limitedCodeLengths(counts: ArrayLike<number>, maxLength: number): Uint8Array {
  const lengths = new Uint8Array(256);
  const symbols: number[] = [];
  for (let s = 0; s < counts.length; s++) if (counts[s] > 0) symbols.push(s);
  if (symbols.length === 0) return lengths;
  if (symbols.length === 1) {
    lengths[symbols[0]] = 1;
    return lengths;
  }
  if (symbols.length > 2 ** maxLength) {
    throw new Df11Error('unencodable', `${symbols.length} symbols cannot fit in codes of ${maxLength} bits`);
  }
  symbols.sort((a, b) => counts[a] - counts[b] || a - b);
  const leaves: PmItem[] = symbols.map((s) => ({ weight: counts[s], symbol: s, left: null, right: null }));
  let list = leaves;
  for (let level = 1; level < maxLength; level++) {
    const merged: PmItem[] = [];
    let i = 0;
    let j = 0;
    const packages = Math.floor(list.length / 2);
    // Merge the leaves with the packages of adjacent pairs of the previous list, both by weight.
    while (i < leaves.length || j < packages) {
      const pw = j < packages ? list[2 * j].weight + list[2 * j + 1].weight : Infinity;
      if (i < leaves.length && leaves[i].weight <= pw) {
        merged.push(leaves[i++]);
      } else {
        merged.push({ weight: pw, symbol: -1, left: list[2 * j], right: list[2 * j + 1] });
        j++;
      }
    }
    list = merged;
  }
  // Every occurrence of a leaf among the first 2n-2 items adds one bit to its code.
  const stack: PmItem[] = [];
  for (let i = 0; i < 2 * symbols.length - 2; i++) {
    stack.push(list[i]);
    while (stack.length > 0) {
      const item = stack.pop() as PmItem;
      if (item.symbol >= 0) lengths[item.symbol]++;
      else stack.push(item.left as PmItem, item.right as PmItem);
    }
  }
  return lengths;
}

/** Canonical codes: symbols ordered by (length, symbol) get consecutive codes. */
export function canonicalCodes(lengths: Uint8Array): Uint32Array {
  const codes = new Uint32Array(256);
  const order = symbolsByLength(lengths);
  let code = 0;
  let prevLength = 0;
  for (const s of order) {
    code = code * 2 ** (lengths[s] - prevLength);
    codes[s] = code;
    code++;
    prevLength = lengths[s];
  }
  return codes;
}

function symbolsByLength(lengths: Uint8Array): number[] {
  const order: number[] = [];
  for (let s = 0; s < 256; s++) if (lengths[s] > 0) order.push(s);
  return order.sort((a, b) => lengths[a] - lengths[b] || a - b);
}

/**
 * The official LUT layout: k rows of 256 bytes; rows 0..k-2 are decode tables (row 0 indexed by the
 * first code byte, child table j reached through the value 256 - j), row k-1 maps symbol → length.
 * Entries no valid stream reaches are filled with an absent symbol (code length 0) where one exists,
 * so a decoder that lands there reports corrupt data instead of emitting a wrong exponent.
 * Returns null if the code needs more than 16 child tables.
 */
export function buildLuts(code: HuffmanCode): Uint8Array | null {
  const { lengths, codes } = code;
  const tables: Uint8Array[] = [new Uint8Array(256)];
  const filled: Uint8Array[] = [new Uint8Array(256)];
  for (const s of symbolsByLength(lengths)) {
    const len = lengths[s];
    const c = codes[s];
    let t = 0;
    let consumed = 0;
    while (len - consumed > 8) {
      const byte = Math.floor(c / 2 ** (len - consumed - 8)) & 0xff;
      if (!filled[t][byte]) {
        if (tables.length > MAX_CHILD_TABLES) return null;
        tables[t][byte] = 256 - tables.length;
        filled[t][byte] = 1;
        tables.push(new Uint8Array(256));
        filled.push(new Uint8Array(256));
      }
      t = 256 - tables[t][byte];
      consumed += 8;
    }
    const rest = len - consumed; // 1..8 bits left, fill every entry they prefix
    const first = (c & ((1 << rest) - 1)) << (8 - rest);
    tables[t].fill(s, first, first + (1 << (8 - rest)));
    filled[t].fill(1, first, first + (1 << (8 - rest)));
  }
  let absent = -1;
  for (let s = 0; s < SYMBOL_COUNT && absent < 0; s++) if (lengths[s] === 0) absent = s;
  const k = tables.length + 1;
  const luts = new Uint8Array(k * 256);
  for (let t = 0; t < tables.length; t++) {
    if (absent >= 0) for (let i = 0; i < 256; i++) if (!filled[t][i]) tables[t][i] = absent;
    luts.set(tables[t], t * 256);
  }
  luts.set(lengths, (k - 1) * 256);
  return luts;
}

export interface UnitCode extends HuffmanCode {
  luts: Uint8Array;
}

/**
 * The code and LUTs for an exponent histogram. `unitName` only labels errors. Throws
 * Df11Error('unencodable') if any exponent >= 240 occurs (the caller names the tensor first).
 */
export function buildUnitCode(counts: Uint32Array, unitName: string): UnitCode {
  for (let s = SYMBOL_COUNT; s < 256; s++) {
    if (counts[s] > 0) {
      throw new Df11Error('unencodable', `${unitName}: exponent ${s} (|x| >= 2^113, Inf or NaN) cannot be DF11-coded`);
    }
  }
  for (let maxLength = MAX_CODE_LENGTH; maxLength >= 8; maxLength--) {
    const lengths = limitedCodeLengths(counts, maxLength);
    const code = { lengths, codes: canonicalCodes(lengths) };
    const luts = buildLuts(code);
    if (luts) return { ...code, luts };
  }
  // Unreachable: with codes of at most 8 bits there are no child tables.
  throw new Df11Error('unencodable', `${unitName}: no code fits the DF11 table layout`);
}
