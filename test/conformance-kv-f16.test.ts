/**
 * The f16 KV cache (K and V rounded to halves, packed two to a u32) against HF transformers fp32: logits
 * within F16_TOLERANCE of the references, greedy ids equal on the bundled models and the fixtures, and
 * DF11 mode still bit-identical to BF16 mode with this cache. Kept cheap for CI on SwiftShader: the tiny
 * fixtures and stories-micro get every reference in full; stories-15m (8 layers) its first reference's
 * logits and the first STORIES_15M_IDS greedy ids.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directoryFiles } from '../src/format/node-files.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { openGenerator } from '../src/model/open-generator.ts';
import { readRefs } from '../src/testing/model-reference.ts';
import { continueGreedy, expectSameLogits, maxAbsDiff } from './generator-checks.ts';

/**
 * max |Δlogit| vs HF fp32 with the f16 cache (f32 cache: 2e-3, test/conformance-models.test.ts). Halves
 * keep 11 significant bits: K/V carry a relative error of up to 2^-11 into every score and output.
 */
const F16_TOLERANCE = 2e-2;

const MODELS = ['test/fixtures/hf/tiny-llama-tied', 'test/fixtures/hf/tiny-qwen2', 'test/fixtures/hf/tiny-qwen3', 'test/fixtures/hf/tiny-qwen3-5-text', 'models/stories-micro', 'models/stories-15m'];
/** The slow model: one reference, this many greedy ids. */
const SHORT_RUN: Readonly<Record<string, number>> = { 'models/stories-15m': 12 };

let gpu: Gpu;
beforeAll(async () => {
  gpu = await createNodeGpu();
});
afterAll(() => gpu?.destroy());



for (const dir of MODELS) {
  describe(dir, () => {
    it(`f16 KV cache: logits within ${F16_TOLERANCE} of HF fp32, greedy ids equal`, async () => {
      const gen = await openGenerator(gpu, directoryFiles(dir), { mode: 'bf16', contextLength: 96, kvCache: 'f16' });
      try {
        const ids = SHORT_RUN[dir];
        const refs = ids === undefined ? readRefs(dir) : readRefs(dir).slice(0, 1);
        for (const ref of refs) {
          gen.reset();
          const logits = await gen.prefill(ref.input_ids);
          expect(maxAbsDiff(logits, ref.last_logits)).toBeLessThanOrEqual(F16_TOLERANCE);
          const want = ref.greedy_ids.slice(0, ids ?? ref.greedy_ids.length);
          expect(await continueGreedy(gen, logits, want.length)).toEqual(want);
        }
      } finally {
        gen.dispose();
      }
    }, 300_000);
  });
}

it('f16 KV cache: DF11 and BF16 modes stay bit-identical', async () => {
  const dir = 'test/fixtures/hf/tiny-qwen3';
  const ref = readRefs(dir)[0]!;
  const [df11, bf16] = await Promise.all(
    (['df11', 'bf16'] as const).map((mode) => openGenerator(gpu, directoryFiles(dir), { mode, contextLength: 64, kvCache: 'f16', residentLayers: 0 })),
  );
  try {
    await expectSameLogits(df11, bf16, ref, 3);
  } finally {
    df11.dispose();
    bf16.dispose();
  }
}, 300_000);
