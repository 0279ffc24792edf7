/**
 * Each published DF11 layout (test/official-layouts.ts) runs on the GPU and answers like HF transformers:
 * prefill logits within 2e-3 of the fp32 reference and the first greedy ids. tiny-qwen3 layouts run with
 * DF11-resident weights; the 8B-style stories-15m in BF16 mode (decoded once at load: DF11 decode per
 * forward is slow on SwiftShader).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argmax } from '../src/engine/sampler.ts';
import { memoryFiles } from '../src/format/memory-files.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { openGenerator } from '../src/model/open-generator.ts';
import { readRefs } from '../src/testing/model-reference.ts';
import { eightB, qwen3FourB, singleFile, tinyQwen3, withBf16Index, type Files } from './official-layouts.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await createNodeGpu();
});
afterAll(() => gpu?.destroy());

async function expectAnswers(files: Files, refDir: string, mode: 'df11' | 'bf16', greedyCount: number): Promise<string[]> {
  const ref = readRefs(refDir)[0]!;
  const steps: string[] = [];
  const onLoadStep = (phase: string, done: number, total: number): number => steps.push(`${phase} ${done}/${total}`);
  const gen = await openGenerator(gpu, memoryFiles(files), { mode, contextLength: 64, onLoadStep });
  try {
    const logits = await gen.prefill(ref.input_ids);
    let diff = 0;
    for (let i = 0; i < logits.length; i++) diff = Math.max(diff, Math.abs(logits[i]! - ref.last_logits[i]!));
    expect(logits.length).toBe(ref.last_logits.length);
    expect(diff).toBeLessThanOrEqual(2e-3);
    const out = [argmax(logits)];
    while (out.length < greedyCount) out.push(argmax(await gen.decode(out.at(-1)!)));
    expect(out).toEqual(ref.greedy_ids.slice(0, greedyCount));
  } finally {
    gen.dispose();
  }
  return steps;
}

const QWEN3 = 'test/fixtures/hf/tiny-qwen3';

describe('published DF11 layouts answer on the GPU', () => {
  it('Qwen3-4B style (BF16 embedding, layers DF11, tied head)', async () => {
    // Load steps: each DF11 unit uploaded, then the shaders.
    expect(await expectAnswers(await qwen3FourB(), QWEN3, 'df11', 3)).toEqual(['upload 1/2', 'upload 2/2', 'compile 0/1']);
  });
  it('save_single_file output', async () => {
    await expectAnswers(await singleFile(tinyQwen3()), QWEN3, 'df11', 3);
  });
  it('DF11 files beside the BF16 index', async () => {
    await expectAnswers(withBf16Index(tinyQwen3(), ['model.embed_tokens.weight', 'model.norm.weight']), QWEN3, 'df11', 3);
  });
  it('8B style (lm_head and embed_tokens units), 0.2.0 config', async () => {
    await expectAnswers(eightB(), 'models/stories-15m', 'bf16', 1);
  });
});
