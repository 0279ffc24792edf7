import { expect } from 'vitest';
import { decodeUnit } from '../src/format/df11-cpu-decoder.ts';
import type { ModelWeights } from '../src/format/model-reader.ts';
import type { RefTensor } from './format-reference.ts';

/** Every matrix of every DF11 unit of `model` decodes (CPU decoder) to the reference's bytes, bit for bit. */
export async function expectUnitsDecodeTo(model: ModelWeights, ref: ReadonlyMap<string, RefTensor>): Promise<{ matrices: number; weights: number }> {
  let matrices = 0;
  let weights = 0;
  for (const name of model.unitNames) {
    const unit = await model.readUnit(name);
    const bits = decodeUnit(unit);
    for (const m of unit.matrices) {
      expect(Buffer.from(bits.buffer, bits.byteOffset + 2 * m.offset, 2 * m.size).equals(ref.get(m.name)!.bytes), m.name).toBe(true);
      matrices++;
      weights += m.size;
    }
  }
  return { matrices, weights };
}
