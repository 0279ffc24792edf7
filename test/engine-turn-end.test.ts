/**
 * ChatML's end of turn (<|im_end|>) ends a chat answer even when no eos list names it (base Qwen models),
 * while a raw generate() runs past it. A tiny word-level tokenizer and a generator that plays a script.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine.ts';
import type { TokenGenerator } from '../src/model/token-generator.ts';
import { specFromConfig } from '../src/format/config.ts';
import { memoryFiles } from '../src/format/memory-files.ts';

const IM_END = 3;
const VOCAB = { a: 0, b: 1, '<unk>': 2, '<|im_end|>': IM_END };
/** What the "model" says after any prompt: two words, the end of turn, then more words. */
const SCRIPT = [0, 1, IM_END, 0, 1, 0];

const tokenizerJson = {
  version: '1.0',
  added_tokens: [{ id: IM_END, content: '<|im_end|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
  normalizer: null,
  pre_tokenizer: { type: 'WhitespaceSplit' },
  post_processor: null,
  decoder: null,
  model: { type: 'WordLevel', vocab: VOCAB, unk_token: '<unk>' },
};
const tokenizerConfig = { chat_template: '{% for m in messages %}{{ m.content }}<|im_end|>{% endfor %}' };
const encoder = new TextEncoder();
const files = memoryFiles(new Map([
  ['tokenizer.json', encoder.encode(JSON.stringify(tokenizerJson))],
  ['tokenizer_config.json', encoder.encode(JSON.stringify(tokenizerConfig))],
]));
const spec = { ...specFromConfig(JSON.parse(readFileSync('test/fixtures/hf/tiny-qwen3/config.json', 'utf8'))), vocabSize: 4, eosTokenIds: [] };

function scriptedGenerator(): TokenGenerator {
  let position = 0;
  let step = 0;
  const logits = () => {
    const out = new Float32Array(spec.vocabSize).fill(-1);
    out[SCRIPT[Math.min(step++, SCRIPT.length - 1)]!] = 1;
    return out;
  };
  return {
    spec,
    contextLength: 64,
    get position() {
      return position;
    },
    prefill: async (ids) => ((position += ids.length), (step = 0), logits()),
    decode: async () => ((position += 1), logits()),
    reset: () => void (position = 0),
    memory: () => ({ weightMode: 'bf16', weightBytes: 1, bf16WeightBytes: 1, transientBytes: 0, kvCacheBytes: 1, activationBytes: 1, resident: { layers: 1, totalLayers: 1, head: true } }),
    dispose: () => undefined,
  };
}

describe('end of turn', () => {
  it('ends a chat answer at <|im_end|>; generate() runs past it', async () => {
    const engine = createEngine({ backend: { fetchFiles: async () => files, createGenerator: async () => scriptedGenerator() } });
    await engine.load('memory');
    const reply = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'a' }], temperature: 0, max_tokens: 5 });
    expect(reply.choices[0].message.content).toBe('a b');
    expect(reply.choices[0].finish_reason).toBe('stop');
    expect(reply.usage.completion_tokens).toBe(2);

    let raw = '';
    for await (const piece of engine.generate('b a', { temperature: 0, max_tokens: 5 })) raw += piece;
    expect(raw.replace(/\s+/g, ' ').trim()).toBe('a b a b');
    expect((await engine.stats()).last?.completionTokens).toBe(5);
  });
});
