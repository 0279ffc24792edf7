// The OpenAI request surface: each implemented field (logprobs, top_logprobs, max_completion_tokens,
// presence/frequency penalties, logit_bias) and each refused one (n > 1, tools, tool_choice, response_format).
import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine.ts';
import { logSumExp, topIds } from '../src/engine/logprobs.ts';
import { Sampler } from '../src/engine/sampler.ts';
import { TextTokenizer } from '../src/engine/tokenizer.ts';
import type { ChatCompletionChunk, ChatCompletionRequestNonStreaming, TokenLogprob } from '../src/engine/types.ts';
import { isDf11Error } from '../src/errors.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import { codeOf, codeOfCall, errorOf } from '../src/testing/error-code.ts';
import { maxMessage, refs, scriptedBackend } from './engine-scripted.ts';

async function loaded() {
  const { backend } = scriptedBackend();
  const engine = createEngine({ backend });
  await engine.load('models/stories-15m');
  return engine;
}

const greedy = (o: Partial<ChatCompletionRequestNonStreaming> = {}): ChatCompletionRequestNonStreaming => ({
  messages: maxMessage, temperature: 0, max_tokens: 6, ...o,
});

/** Greedy picks of a sampler that sees the same logits every step. */
function picks(sampler: Sampler, logits: number[], steps: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < steps; i++) out.push(sampler.sample(Float32Array.from(logits), []));
  return out;
}

describe('sampler: OpenAI penalties and logit_bias', () => {
  const logits = [2, 1.5, 0];

  it('presence_penalty subtracts once per token present in the completion', () => {
    // 0 (2 > 1.5); 0 now 1.4 < 1.5 → 1; then 1.4 > 0.9 forever
    expect(picks(new Sampler({ temperature: 0, presence_penalty: 0.6 }), logits, 5)).toEqual([0, 1, 0, 0, 0]);
    expect(picks(new Sampler({ temperature: 0 }), logits, 3)).toEqual([0, 0, 0]);
  });

  it('frequency_penalty subtracts once per occurrence', () => {
    // counts (0,1): (0,0) → 0; (1,0): 1.4 < 1.5 → 1; (1,1): 1.4 > 0.9 → 0; (2,1): 0.8 < 0.9 → 1; (2,2): 0.8 > 0.3 → 0
    expect(picks(new Sampler({ temperature: 0, frequency_penalty: 0.6 }), logits, 5)).toEqual([0, 1, 0, 1, 0]);
  });

  it('logit_bias is added to the listed logits (string keys, like OpenAI JSON)', () => {
    expect(picks(new Sampler({ temperature: 0, logit_bias: { '2': 5 } }), logits, 2)).toEqual([2, 2]);
    expect(picks(new Sampler({ temperature: 0, logit_bias: { '0': -100 } }), logits, 2)).toEqual([1, 1]);
    // sampling with temperature: -100 makes a token practically impossible
    const sampler = new Sampler({ temperature: 1, seed: 3, logit_bias: { '0': -100, '1': -100 } });
    expect(new Set(picks(sampler, logits, 50))).toEqual(new Set([2]));
  });

  it('bad values are bad-request', () => {
    expect(codeOfCall(() => new Sampler({ presence_penalty: 2.5 }))).toBe('bad-request');
    expect(codeOfCall(() => new Sampler({ frequency_penalty: -3 }))).toBe('bad-request');
    expect(codeOfCall(() => new Sampler({ logit_bias: { x: 1 } }))).toBe('bad-request');
    expect(codeOfCall(() => new Sampler({ logit_bias: { '1': 101 } }))).toBe('bad-request');
    expect(codeOfCall(() => new Sampler({ logit_bias: { '3': 1 } }, 3))).toBe('bad-request');
    expect(codeOfCall(() => new Sampler({ logit_bias: { '2': 1 } }, 3))).toBe('ok');
  });
});

describe('logprobs helpers', () => {
  it('topIds equals a full sort (ties: lower id first), logSumExp is stable', () => {
    let s = 7;
    const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const logits = Array.from({ length: 1000 }, () => Math.round(rand() * 40) / 4 - 5);
    logits[10] = -Infinity;
    const sorted = logits.map((_, i) => i).filter((i) => logits[i] > -Infinity).sort((a, b) => logits[b] - logits[a] || a - b);
    for (const k of [0, 1, 5, 20]) expect(topIds(logits, k)).toEqual(sorted.slice(0, k));
    expect(logSumExp([1000, 1000])).toBeCloseTo(1000 + Math.log(2), 9);
  });
});

describe('engine: implemented OpenAI fields', () => {
  it('logprobs: one entry per completion token, log-softmax of the raw logits, top alternatives sorted', async () => {
    const engine = await loaded();
    const reply = await engine.chat.completions.create(greedy({ logprobs: true, top_logprobs: 3 }));
    const content = reply.choices[0].logprobs?.content ?? [];
    expect(content).toHaveLength(6);
    const tokenizer = await TextTokenizer.fromFiles(directoryFiles('models/stories-15m'));
    const ids = refs[2].greedy_ids.slice(0, 6);
    // the scripted generator's logits: a fixed ramp, with the chosen token at 5
    const ramp = Array.from({ length: 4096 }, (_, i) => -((i * 7919) % 97) / 10);
    ids.forEach((id, k) => {
      const logits = Float32Array.from(ramp);
      logits[id] = 5;
      const entry = content[k];
      expect(entry.token).toBe(tokenizer.decode([id]));
      expect(entry.bytes).toEqual(Array.from(new TextEncoder().encode(entry.token)));
      expect(entry.logprob).toBeCloseTo(5 - logSumExp(logits), 6);
      expect(entry.top_logprobs).toHaveLength(3);
      expect(entry.top_logprobs[0]).toEqual({ token: entry.token, logprob: entry.logprob, bytes: entry.bytes });
      const lp = entry.top_logprobs.map((t) => t.logprob);
      expect([...lp].sort((a, b) => b - a)).toEqual(lp);
    });
    expect(content.map((c) => c.token).join('')).toBe(reply.choices[0].message.content);
    // without logprobs: null
    expect((await engine.chat.completions.create(greedy())).choices[0].logprobs).toBeNull();
    // top_logprobs 0: no alternatives
    const bare = await engine.chat.completions.create(greedy({ logprobs: true }));
    expect(bare.choices[0].logprobs?.content.map((c) => c.top_logprobs.length)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('logprobs stream with the chunks that carry their text, the same as the whole reply', async () => {
    const engine = await loaded();
    const whole = await engine.chat.completions.create(greedy({ logprobs: true, top_logprobs: 2 }));
    const stream = await engine.chat.completions.create({ ...greedy({ logprobs: true, top_logprobs: 2 }), stream: true });
    const streamed: TokenLogprob[] = [];
    const chunks: ChatCompletionChunk[] = [];
    for await (const c of stream) {
      chunks.push(c);
      streamed.push(...(c.choices[0]?.logprobs?.content ?? []));
    }
    expect(streamed).toEqual(whole.choices[0].logprobs?.content);
    expect(chunks.at(-1)?.usage).toEqual(whole.usage);
  });

  it('max_completion_tokens caps the completion like max_tokens; the two must agree', async () => {
    const engine = await loaded();
    const reply = await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_completion_tokens: 5 });
    expect(reply.usage.completion_tokens).toBe(5);
    expect(reply.choices[0].finish_reason).toBe('length');
    expect((await engine.chat.completions.create(greedy({ max_completion_tokens: 6 }))).usage.completion_tokens).toBe(6);
    expect(await codeOf(engine.chat.completions.create(greedy({ max_completion_tokens: 7 })))).toBe('bad-request');
    expect(await codeOf(engine.chat.completions.create({ messages: maxMessage, max_completion_tokens: 0 }))).toBe('bad-request');
  });

  it('logit_bias steers the answer; presence/frequency penalties change a repeating answer', async () => {
    const engine = await loaded();
    const tokenizer = await TextTokenizer.fromFiles(directoryFiles('models/stories-15m'));
    const biased = await engine.chat.completions.create(greedy({ max_tokens: 3, logit_bias: { '494': 50 } }));
    expect(biased.choices[0].message.content).toBe(tokenizer.decode([494, 494, 494]));
    // " mom" (494) and " Tim" (688 = 494 + 2·97) share their scripted logit, so with the same bias they tie
    // and the lower id wins. presence: each loses 1 once present, so after both appeared 494 wins again;
    // frequency: each occurrence costs 1, so they alternate. Without penalties: 494 throughout.
    const bias = { '494': 50, '688': 50 };
    const answer = async (o: Partial<ChatCompletionRequestNonStreaming>) =>
      (await engine.chat.completions.create(greedy({ max_tokens: 5, logit_bias: bias, ...o }))).choices[0].message.content;
    expect(await answer({})).toBe(' mom mom mom mom mom');
    expect(await answer({ presence_penalty: 1 })).toBe(' mom Tim mom mom mom');
    expect(await answer({ frequency_penalty: 1 })).toBe(' mom Tim mom Tim mom');
    expect(await codeOf(engine.chat.completions.create(greedy({ logit_bias: { '4096': 1 } })))).toBe('bad-request');
  });

  it('logprobs are checked: top_logprobs needs logprobs and is at most 20', async () => {
    const engine = await loaded();
    expect(await codeOf(engine.chat.completions.create(greedy({ top_logprobs: 2 })))).toBe('bad-request');
    expect(await codeOf(engine.chat.completions.create(greedy({ logprobs: true, top_logprobs: 21 })))).toBe('bad-request');
  });
});

describe('engine: refused OpenAI fields are unsupported-parameter, naming the field', () => {
  const cases: [string, Partial<ChatCompletionRequestNonStreaming>][] = [
    ['n', { n: 2 }],
    ['tools', { tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] }],
    ['tool_choice', { tool_choice: 'auto' }],
    ['response_format', { response_format: { type: 'json_object' } }],
  ];
  for (const [field, extra] of cases) {
    it(field, async () => {
      const engine = await loaded();
      const e = await errorOf(engine.chat.completions.create(greedy(extra)));
      expect(isDf11Error(e, 'unsupported-parameter')).toBe(true);
      expect((e as Error).message.startsWith(`${field}:`)).toBe(true);
      // the stream is refused before it starts, too
      expect(await codeOf(engine.chat.completions.create({ ...greedy(extra), stream: true }))).toBe('unsupported-parameter');
    });
  }

  it('their harmless values are accepted: n 1, no tools, tool_choice none, text format', async () => {
    const engine = await loaded();
    const reply = await engine.chat.completions.create(greedy({ n: 1, tools: [], tool_choice: 'none', response_format: { type: 'text' } }));
    expect(reply.usage.completion_tokens).toBe(6);
  });
});
