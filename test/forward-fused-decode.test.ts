/**
 * ForwardOptions.fusedDecode: DF11 mode with nothing resident (layers and LM head decoded per step), one-token
 * layer steps and every LM head tile through the fused decode + GEMV, against BF16 mode. The prefill's layers
 * still decode into the transient buffer, its head is fused. Fused sums run in another order: logits within
 * 1e-4 of BF16 mode's and the same greedy ids. Fixtures: tiny-qwen2 (q/k/v bias: the fused reduce adds it per matrix) and tiny-gemma3
 * (sandwich norms: no residual accumulate; GeGLU: the activation applied as the fused kernel reads gate|up).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argmax } from '../src/engine/sampler.ts';
import { openModel } from '../src/format/model-reader.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { createGenerator } from '../src/model/generator.ts';
import { readRefs } from '../src/testing/model-reference.ts';
import { maxAbsDiff } from './generator-checks.ts';

const TOLERANCE = 1e-4;
const STEPS = 4;

let gpu: Gpu;
beforeAll(async () => {
  gpu = await createNodeGpu();
});
afterAll(() => gpu?.destroy());

describe('fused DF11 decode + GEMV in the forward', () => {
  it.each(['tiny-qwen2', 'tiny-gemma3'])(`%s: DF11 fused decode steps match BF16 mode within ${TOLERANCE}, same greedy ids`, { timeout: 600_000 }, async (name) => {
    const dir = `test/fixtures/hf/${name}`;
    const model = await openModel(directoryFiles(dir));
    const ref = readRefs(dir)[1]!; // 7 tokens: a prefill (the first reference has one token, a fused step)
    const bf16 = await createGenerator(gpu, model, { mode: 'bf16', contextLength: 64 });
    const fused = await createGenerator(gpu, model, { mode: 'df11', contextLength: 64, resident: { layers: 0, head: false }, fusedDecode: true });
    try {
      expect(fused.memory().resident.layers).toBe(0);
      const expected = await bf16.prefill(ref.input_ids);
      const first = await fused.prefill(ref.input_ids);
      const prefillDiff = maxAbsDiff(first, expected);
      expect(prefillDiff, 'prefill').toBeLessThanOrEqual(TOLERANCE);
      // the prefill's layers are unfused (bit-identical to BF16 mode): a difference shows the fused head ran
      expect(prefillDiff, 'prefill').toBeGreaterThan(0);
      expect(argmax(first)).toBe(argmax(expected));
      let next = ref.greedy_ids[0]!;
      for (let step = 0; step < STEPS; step++) {
        const [want, got] = [await bf16.decode(next), await fused.decode(next)];
        const diff = maxAbsDiff(got, want);
        expect(diff, `step ${step}`).toBeLessThanOrEqual(TOLERANCE);
        expect(argmax(got), `step ${step}`).toBe(argmax(want));
        next = argmax(want);
      }
    } finally {
      bf16.dispose();
      fused.dispose();
    }
  });
});
