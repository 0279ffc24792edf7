/**
 * One DFloat11 compression unit as stored in the official format (see DESIGN.md §1): the weights of
 * one or more matrices, concatenated row-major, sharing one Huffman code of the BF16 exponent.
 */
export interface Df11Unit {
  /** Module name of the unit, e.g. "model.layers.0" or "lm_head". */
  name: string;
  /** Huffman bitstream of the exponents, MSB-first.  (nBytes) */
  encodedExponent: Uint8Array;
  /** Sign bit and 7 mantissa bits, one byte per weight.  (nElements) */
  signMantissa: Uint8Array;
  /** k-1 decode tables, then the code-length table.  (k, 256) */
  luts: Uint8Array;
  /** 5 bits per 8-byte thread window, packed MSB-first.  (320 * nBlocks) */
  gaps: Uint8Array;
  /** Index of the first element whose code starts in each 4096-byte block; last entry = nElements.  (nBlocks + 1) */
  outputPositions: Uint32Array;
  /** Start offsets of matrices 2..m in the concatenation.  (m - 1) */
  splitPositions: number[];
  /** The matrices of the unit in concatenation order: full tensor names and shapes. */
  matrices: Df11Matrix[];
}

export interface Df11Matrix {
  /** Full tensor name, e.g. "model.layers.0.self_attn.q_proj.weight". */
  name: string;
  shape: number[];
  /** First element of this matrix in the unit's concatenation. */
  offset: number;
  /** Number of elements. */
  size: number;
}

/** Stream geometry shared by the encoder, the CPU decoder and the GPU kernel. */
export const BYTES_PER_THREAD = 8;
export const THREADS_PER_BLOCK = 512;
export const BYTES_PER_BLOCK = BYTES_PER_THREAD * THREADS_PER_BLOCK; // 4096
export const GAP_BYTES_PER_BLOCK = (THREADS_PER_BLOCK * 5) / 8; // 320
/** Codes never exceed 32 bits; the decoder relies on it (one 32-bit window per code). */
export const MAX_CODE_LENGTH = 32;
/** Table values >= this are pointers to child tables 256 - value. */
export const LUT_POINTER_BASE = 240;
