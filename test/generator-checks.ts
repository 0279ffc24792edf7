import { expect } from 'vitest';
import { argmax } from '../src/engine/sampler.ts';
import type { TokenGenerator } from '../src/model/token-generator.ts';

/** Largest |a[i] - b[i]| (the arrays have the same length). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/**
 * Greedy continuation of a generator that has just returned `logits` (a prefill the caller already checked,
 * so the test does not run it twice): their argmax, then `count - 1` decode steps.
 */
export async function continueGreedy(gen: TokenGenerator, logits: Float32Array, count: number): Promise<number[]> {
  const out = [argmax(logits)];
  while (out.length < count) out.push(argmax(await gen.decode(out.at(-1)!)));
  return out;
}

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
