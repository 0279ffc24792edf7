/**
 * The GPU forward against HF transformers (fp32 compute on BF16 weights, reference.json of every fixture):
 * last-position logits within 2e-3, argmax at every position, the greedy continuation, and DF11 mode
 * bit-identical to BF16 mode. Runs on SwiftShader here, where DF11 decoding is slow: DF11 mode is compared
 * on prefills and a few decode steps, BF16 mode on everything.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argmax } from '../src/engine/sampler.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { defaultMatmulOptions } from '../src/gpu/kernels/matmul.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { openModel } from '../src/format/model-reader.ts';
import { Forward } from '../src/model/forward.ts';
import { openGenerator } from '../src/model/open-generator.ts';
import { GpuWeights } from '../src/model/weights.ts';
import type { TokenGenerator } from '../src/model/token-generator.ts';
import { readRefs } from '../src/testing/model-reference.ts';
import { continueGreedy, expectSameLogits, maxAbsDiff } from './generator-checks.ts';
import { memoryFiles } from '../src/format/memory-files.ts';
import { GEMMA3_TEXT_FIXTURE, gemma3Multimodal } from './gemma3-multimodal.ts';

const TOLERANCE = 2e-3;



interface ModelCase {
  dir: string;
  /** Greedy tokens to compare (default: all of the reference's). */
  greedyTokens?: number;
  /** Check DF11 decode steps too (each one decodes every layer: slow on SwiftShader for big models). */
  df11DecodeSteps: number;
  /** Refs whose DF11 prefill is compared with BF16 (all by default). */
  df11Refs?: number[];
}

const MODELS: ModelCase[] = [
  { dir: 'test/fixtures/hf/tiny-llama-tied', df11DecodeSteps: 3 },
  { dir: 'test/fixtures/hf/tiny-qwen2', df11DecodeSteps: 3 },
  { dir: 'test/fixtures/hf/tiny-qwen3', df11DecodeSteps: 3 },
  { dir: 'test/fixtures/hf/tiny-smollm3', df11DecodeSteps: 3 }, // no_rope_layers
  { dir: 'test/fixtures/hf/tiny-phi3', df11DecodeSteps: 3 }, // fused qkv / gate_up, partial rotary
  { dir: 'test/fixtures/hf/tiny-mistral-swa', df11DecodeSteps: 3 }, // sliding window 8 (refs reach 33 + 16)
  { dir: 'test/fixtures/hf/tiny-gemma3', df11DecodeSteps: 3 }, // sliding layers only
  { dir: 'test/fixtures/hf/tiny-gemma3-mixed', df11DecodeSteps: 3 }, // sliding + global layers, two RoPE tables
  { dir: 'test/fixtures/hf/tiny-qwen3-5-text', df11DecodeSteps: 3 }, // Gated DeltaNet + gated attention layers, partial rotary
  { dir: 'models/stories-micro', df11DecodeSteps: 2 },
  { dir: 'models/stories-15m', df11DecodeSteps: 0, df11Refs: [0] },
];

let gpu: Gpu;
beforeAll(async () => {
  gpu = await createNodeGpu();
});
afterAll(() => gpu?.destroy());

for (const model of MODELS) {
  describe(model.dir, () => {
    const cases = readRefs(model.dir);
    let bf16: TokenGenerator;
    beforeAll(async () => {
      bf16 = await openGenerator(gpu, directoryFiles(model.dir), { mode: 'bf16', contextLength: 96 });
    });
    afterAll(() => bf16?.dispose());

    cases.forEach((ref, r) => {
      it(`ref ${r}: prefill logits within ${TOLERANCE}, greedy ids`, async () => {
        bf16.reset();
        const logits = await bf16.prefill(ref.input_ids);
        expect(maxAbsDiff(logits, ref.last_logits)).toBeLessThanOrEqual(TOLERANCE);
        const count = Math.min(model.greedyTokens ?? ref.greedy_ids.length, ref.greedy_ids.length);
        expect(await continueGreedy(bf16, logits, count)).toEqual(ref.greedy_ids.slice(0, count));
      });

      it(`ref ${r}: argmax at every position (one token at a time)`, async () => {
        bf16.reset();
        const argmaxes: number[] = [];
        let last: Float32Array | undefined;
        for (const id of ref.input_ids) {
          last = await bf16.decode(id);
          argmaxes.push(argmax(last));
        }
        expect(argmaxes).toEqual(ref.argmax_per_position);
        // Token-by-token and chunked prefill agree closely (different kernels, same math).
        expect(maxAbsDiff(last!, ref.last_logits)).toBeLessThanOrEqual(TOLERANCE);
      });
    });

    it('df11 mode (compressed on load) gives bit-identical logits', async () => {
      const df11 = await openGenerator(gpu, directoryFiles(model.dir), { mode: 'df11', contextLength: 96, residentLayers: 0 });
      try {
        expect(df11.memory().weightBytes).toBeLessThan(bf16.memory().weightBytes);
        for (const r of model.df11Refs ?? cases.map((_, i) => i)) {
          await expectSameLogits(df11, bf16, cases[r]!, model.df11DecodeSteps);
        }
      } finally {
        df11.dispose();
      }
    }, 600_000); // SwiftShader decodes DF11 at about a MB/s: stories-15m takes a minute or more per forward
  });
}

describe('official DF11 fixture (tiny-qwen3)', () => {
  const dir = 'test/fixtures/official-df11/tiny-qwen3';
  const cases = readRefs('test/fixtures/hf/tiny-qwen3');

  it('runs in df11 and bf16 mode, matching the HF reference and each other bit for bit', async () => {
    const df11 = await openGenerator(gpu, directoryFiles(dir), { mode: 'df11', contextLength: 64, residentLayers: 0 });
    const bf16 = await openGenerator(gpu, directoryFiles(dir), { mode: 'bf16', contextLength: 64 });
    try {
      for (const ref of cases) {
        df11.reset();
        bf16.reset();
        const logits = await df11.prefill(ref.input_ids);
        expect(maxAbsDiff(logits, ref.last_logits)).toBeLessThanOrEqual(TOLERANCE);
        const bf16Logits = await bf16.prefill(ref.input_ids);
        expect(bf16Logits).toEqual(logits);
        expect(await continueGreedy(bf16, bf16Logits, ref.greedy_ids.length)).toEqual(ref.greedy_ids);
      }
    } finally {
      df11.dispose();
      bf16.dispose();
    }
  });
});

describe('default limits and a tiled LM head', () => {
  it('gives the same logits (prefill and a decode step) at the spec default limits with the head in 128-row tiles, in both modes', async () => {
    const dir = 'test/fixtures/hf/tiny-llama-tied';
    const ref = readRefs(dir)[2]!;
    const small = await createNodeGpu({ forceDefaultLimits: true });
    const untiled = await openGenerator(gpu, directoryFiles(dir), { mode: 'bf16', contextLength: 64 });
    try {
      const expected = await untiled.prefill(ref.input_ids);
      const next = argmax(expected);
      const expectedDecode = await untiled.decode(next); // the decode attention path
      for (const mode of ['bf16', 'df11'] as const) {
        const tiled = await openGenerator(small, directoryFiles(dir), { mode, contextLength: 64, maxHeadTileRows: 128, residentLayers: 0 });
        try {
          expect(await tiled.prefill(ref.input_ids), mode).toEqual(expected);
          expect(await tiled.decode(next), `${mode} decode`).toEqual(expectedDecode);
        } finally {
          tiled.dispose();
        }
      }
    } finally {
      untiled.dispose();
      small.destroy();
    }
  });
});

describe('GPU kernel choices on SwiftShader', () => {
  it('matches the reference with the GPU GEMV variant, tiled GEMM above 4 tokens and 5-token prefill chunks', async () => {
    // Every reference of tiny-qwen3, the first of stories-micro (a second shape; SwiftShader runs these kernels slowly).
    for (const [dir, refs] of [['test/fixtures/hf/tiny-qwen3', 3], ['models/stories-micro', 1]] as const) {
      const gen = await openGenerator(gpu, directoryFiles(dir), { mode: 'bf16', contextLength: 96, chunkTokens: 5, matmul: defaultMatmulOptions(gpu, 'gpu') });
      try {
        for (const ref of readRefs(dir).slice(0, refs)) {
          gen.reset();
          const logits = await gen.prefill(ref.input_ids);
          expect(maxAbsDiff(logits, ref.last_logits), dir).toBeLessThanOrEqual(TOLERANCE);
          expect(await continueGreedy(gen, logits, 6)).toEqual(ref.greedy_ids.slice(0, 6));
        }
      } finally {
        gen.dispose();
      }
    }
  }, 600_000); // SwiftShader compiles the GPU kernels slowly and runs their barriers slowly

  it('keeps df11 and bf16 bit-identical with the GPU kernels (GEMV, GEMM, fused activation, tiled head)', async () => {
    const dir = 'test/fixtures/official-df11/tiny-qwen3';
    const options = { contextLength: 64, chunkTokens: 6, maxHeadTileRows: 128, matmul: defaultMatmulOptions(gpu, 'gpu'), residentLayers: 0 };
    const df11 = await openGenerator(gpu, directoryFiles(dir), { mode: 'df11', ...options });
    const bf16 = await openGenerator(gpu, directoryFiles(dir), { mode: 'bf16', ...options });
    try {
      await expectSameLogits(df11, bf16, readRefs('test/fixtures/hf/tiny-qwen3')[0]!, 3);
    } finally {
      df11.dispose();
      bf16.dispose();
    }
  }, 600_000);
});

describe('Gemma 3 multimodal checkpoint (text_config, language_model.model.* weights, vision tower skipped)', () => {
  it('gives the text model\'s logits bit for bit, BF16 as saved by HF and DF11 as the official compressor lays it out', async () => {
    const ref = readRefs(GEMMA3_TEXT_FIXTURE)[1]!;
    const plain = await openGenerator(gpu, directoryFiles(GEMMA3_TEXT_FIXTURE), { mode: 'bf16', contextLength: 16 });
    try {
      const expected = await plain.prefill(ref.input_ids);
      expect(maxAbsDiff(expected, ref.last_logits)).toBeLessThanOrEqual(TOLERANCE);
      for (const [format, mode] of [['bf16', 'bf16'], ['df11', 'df11']] as const) {
        const gen = await openGenerator(gpu, memoryFiles(await gemma3Multimodal(format)), { mode, contextLength: 16, residentLayers: 0 });
        try {
          expect(await gen.prefill(ref.input_ids), format).toEqual(expected);
        } finally {
          gen.dispose();
        }
      }
    } finally {
      plain.dispose();
    }
  }, 300_000);
});

describe('Qwen3.5 recurrent state', () => {
  it('carries the conv and delta-rule state across prefill chunks, and starts over at position 0', async () => {
    const dir = 'test/fixtures/hf/tiny-qwen3-5-text';
    const ref = readRefs(dir)[2]!; // 33 tokens: 9 chunks of 4
    const gen = await openGenerator(gpu, directoryFiles(dir), { mode: 'bf16', contextLength: 40, chunkTokens: 4 });
    try {
      const first = await gen.prefill(ref.input_ids);
      expect(maxAbsDiff(first, ref.last_logits)).toBeLessThanOrEqual(TOLERANCE);
      await gen.decode(ref.greedy_ids[0]!);
      gen.reset();
      expect(await gen.prefill(ref.input_ids)).toEqual(first);
    } finally {
      gen.dispose();
    }
  }, 120_000);

  it('refuses a step that neither continues the state nor starts at 0', async () => {
    const weights = await GpuWeights.load(gpu, await openModel(directoryFiles('test/fixtures/hf/tiny-qwen3-5-text')), { mode: 'bf16', contextLength: 16, chunkTokens: 4 });
    const forward = await Forward.create(gpu, weights, { ropePrecision: 'bf16' });
    try {
      await forward.run(Uint32Array.of(1, 2, 3), 0, false);
      await expect(forward.run(Uint32Array.of(4), 1, true)).rejects.toMatchObject({ code: 'bad-request' });
      expect(await forward.run(Uint32Array.of(4), 3, true)).toHaveLength(512);
    } finally {
      forward.destroy();
      weights.destroy();
    }
  });
});

describe('unsupported and overflowing inputs', () => {
  it('throws context-overflow for a prompt longer than the context, and when the cache is full', async () => {
    const gen = await openGenerator(gpu, directoryFiles('test/fixtures/hf/tiny-llama-tied'), { mode: 'bf16', contextLength: 8, chunkTokens: 4 });
    try {
      await expect(gen.prefill([1, 2, 3, 4, 5, 6, 7, 8, 9])).rejects.toMatchObject({ code: 'context-overflow' });
      expect(gen.position).toBe(0);
      await gen.prefill([1, 2, 3, 4, 5, 6, 7]); // two chunks
      expect(gen.position).toBe(7);
      await gen.decode(3);
      await expect(gen.decode(3)).rejects.toMatchObject({ code: 'context-overflow' });
      expect(gen.memory()).toMatchObject({ weightMode: 'bf16', transientBytes: 0 });
    } finally {
      gen.dispose();
    }
  });
});
