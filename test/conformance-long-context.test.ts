/**
 * The GPU forward past 1,000 positions against a CPU forward of the same math (test/cpu-forward.ts, f64):
 * stories-micro (the smallest model) with an f32 KV cache, prefilled in chunks of PREFILL_CHUNK (tiled
 * attention over a long cache, few passes so the SwiftShader run stays short) and then decoded token by
 * token (the decode path: split attention + combine). stories-micro was trained on 512 positions;
 * past them its outputs are not meaningful text, but the math is the same, which is what is compared.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { argmax } from '../src/engine/sampler.ts';
import { openModel } from '../src/format/model-reader.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { createGenerator } from '../src/model/generator.ts';
import { CpuForward } from './cpu-forward.ts';

const PROMPT = 1100;
const DECODES = 2;
const PREFILL_CHUNK = 512;
/** f32 GPU vs f64 CPU over 1,100 positions: max |Δlogit|. */
const TOLERANCE = 2e-3;

let gpu: Gpu;
beforeAll(async () => {
  gpu = await createNodeGpu();
});
afterAll(() => gpu?.destroy());

it(`stories-micro at ${PROMPT}+ positions (f32 cache) equals a CPU forward within ${TOLERANCE}`, async () => {
  const model = await openModel(directoryFiles('models/stories-micro'));
  const contextLength = PROMPT + DECODES + 1;
  const gen = await createGenerator(gpu, model, { mode: 'bf16', contextLength, kvCache: 'f32', chunkTokens: PREFILL_CHUNK });
  const cpu = await CpuForward.create(model, contextLength, 'bf16');
  try {
    const prompt = Array.from({ length: PROMPT }, (_, i) => (i * 7919 + 13) % model.spec.vocabSize);
    const compare = (gpuLogits: Float32Array, cpuLogits: Float64Array, what: string): void => {
      let worst = 0;
      for (let i = 0; i < cpuLogits.length; i++) worst = Math.max(worst, Math.abs(gpuLogits[i]! - cpuLogits[i]!));
      expect(worst, what).toBeLessThanOrEqual(TOLERANCE);
      expect(argmax(gpuLogits), what).toBe(argmax(Float32Array.from(cpuLogits)));
    };
    const logits = await gen.prefill(prompt);
    let cpuLogits: Float64Array | undefined;
    prompt.forEach((id, pos) => (cpuLogits = cpu.step(id, pos, pos === PROMPT - 1)));
    compare(logits, cpuLogits!, `prefill of ${PROMPT}`);
    let next = argmax(logits);
    for (let s = 0; s < DECODES; s++) {
      const g = await gen.decode(next);
      compare(g, cpu.step(next, PROMPT + s, true)!, `decode at ${PROMPT + s}`);
      next = argmax(g);
    }
  } finally {
    gen.dispose();
  }
}, 300_000);
