/**
 * Layer residency gives the same logits bit for bit: DF11 with some layers (or everything) decoded once at
 * load and resident in BF16 equals DF11 decoded per step (nothing resident) and BF16 mode, on a tiny model
 * seen untied (its LM head a unit of its own). A short run: one prompt, then two decode steps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argmax } from '../src/engine/sampler.ts';
import { openModel } from '../src/format/model-reader.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { createGenerator } from '../src/model/generator.ts';
import type { Residency } from '../src/model/layout.ts';
import type { TokenGenerator } from '../src/model/token-generator.ts';
import { readRefs } from '../src/testing/model-reference.ts';
import { untiedView } from '../src/testing/untied-model.ts';

const DIR = 'test/fixtures/hf/tiny-qwen2';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await createNodeGpu();
});
afterAll(() => gpu?.destroy());

describe('layer residency', () => {
  it('partial and full residency give the logits of zero residency and of BF16 mode, bit for bit', { timeout: 300_000 }, async () => {
    const model = untiedView(await openModel(directoryFiles(DIR)));
    const ref = readRefs(DIR)[0]!;
    const splits: Residency[] = [
      { layers: 0, head: false },
      { layers: 1, head: false },
      { layers: model.spec.numLayers, head: true },
    ];
    const gens: TokenGenerator[] = [];
    try {
      gens.push(await createGenerator(gpu, model, { mode: 'bf16', contextLength: 64 }));
      for (const resident of splits) gens.push(await createGenerator(gpu, model, { mode: 'df11', contextLength: 64, resident }));
      expect(gens.map((g) => g.memory().resident.layers)).toEqual([model.spec.numLayers, ...splits.map((s) => s.layers)]);
      const [bf16, ...df11] = gens;
      const expected = await bf16!.prefill(ref.input_ids);
      expect(argmax(expected)).toBe(ref.greedy_ids[0]);
      for (const [i, g] of df11.entries()) expect(await g.prefill(ref.input_ids), `split ${i}`).toEqual(expected);
      let next = ref.greedy_ids[0]!;
      for (let step = 0; step < 2; step++) {
        const want = await bf16!.decode(next);
        for (const [i, g] of df11.entries()) expect(await g.decode(next), `split ${i}, step ${step}`).toEqual(want);
        next = argmax(want);
      }
    } finally {
      for (const g of gens) g.dispose();
    }
  });
});
