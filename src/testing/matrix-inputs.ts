/** Encoder inputs for DF11 tests: matrices of BF16 bits and what a unit of them decodes to. */
import type { MatrixInput } from '../format/df11-encoder.ts';

/** One flat matrix holding `bits`. */
export function oneMatrix(bits: Uint16Array, name = 'w'): MatrixInput[] {
  return [{ name, shape: [bits.length], bits }];
}

/** The matrices' bits back to back: the decoded output of a unit encoded from them. */
export function concatBits(matrices: MatrixInput[]): Uint16Array {
  const all = new Uint16Array(matrices.reduce((a, m) => a + m.bits.length, 0));
  let o = 0;
  for (const m of matrices) {
    all.set(m.bits, o);
    o += m.bits.length;
  }
  return all;
}
