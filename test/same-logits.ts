import { expect } from 'vitest';
import { argmax } from '../src/engine/sampler.ts';
import type { TokenGenerator } from '../src/model/token-generator.ts';

/**
 * Both generators give the same logits bit for bit: the prefill of `ref.input_ids`, then `steps` greedy decode
 * steps from the reference's first greedy id (fed to both). Resets both first.
 */
export async function expectSameLogits(a: TokenGenerator, b: TokenGenerator, ref: { input_ids: number[]; greedy_ids: number[] }, steps: number): Promise<void> {
  a.reset();
  b.reset();
  expect(await a.prefill(ref.input_ids)).toEqual(await b.prefill(ref.input_ids));
  let next = ref.greedy_ids[0]!;
  for (let s = 0; s < steps; s++) {
    const [x, y] = [await a.decode(next), await b.decode(next)];
    expect(x).toEqual(y);
    next = argmax(y);
  }
}
