import { afterAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine.ts';
import { nodeBackend } from '../src/engine/node-backend.ts';
import type { ModelFiles } from '../src/format/byte-source.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import { TextTokenizer } from '../src/engine/tokenizer.ts';
import { refs } from './engine-scripted.ts';

/** The official DFloat11 stories-15m (made by the Python compressor) plus the tokenizer files of the original. */
function officialDf11WithTokenizer(): ModelFiles {
  const df11 = directoryFiles('test/fixtures/official-df11/stories-15m');
  const original = directoryFiles('models/stories-15m');
  const fromOriginal = new Set(['tokenizer.json', 'tokenizer_config.json']);
  return {
    location: 'official DF11 stories-15m',
    list: async () => [...(await df11.list()), ...fromOriginal],
    open: (name) => (fromOriginal.has(name) ? original : df11).open(name),
  };
}

const engine = createEngine({ backend: nodeBackend({ files: officialDf11WithTokenizer }) });
afterAll(() => engine.unload(), 60_000);

/*
 * On SwiftShader (CPU) the per-layer DF11 decode costs ~25 s per forward pass on this machine, against
 * ~0.15 s for a BF16-resident decode step: the long greedy check runs with weights decoded once at load
 * (mode 'bf16', from the same DF11 files), the DF11-resident mode generates a few tokens.
 */
const SLOW = 600_000;

describe('engine on the real GPU forward (official DF11 stories-15m, SwiftShader in CI)', () => {
  it('DF11 resident: the first greedy tokens match the reference; stats report DF11 savings', { timeout: SLOW }, async () => {
    const plans: unknown[] = [];
    const loaded = await engine.load('official', { mode: 'df11', contextLength: 64, residentLayers: 0, onProgress: (p) => p.plan && plans.push(p.plan) });
    // The split of the memory/speed dial, in the load result and the load progress: every layer decoded per step.
    expect(loaded.memory.resident).toEqual({ layers: 0, totalLayers: 8, head: false });
    expect(plans).toEqual([{ contextLength: 64, resident: { layers: 0, totalLayers: 8, head: false } }]);
    const ref = refs[2];
    const reply = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Tell me a story about Max.' }], temperature: 0, max_tokens: 2 });
    const tokenizer = await TextTokenizer.fromFiles(directoryFiles('models/stories-15m'));
    expect(reply.choices[0].message.content).toBe(tokenizer.decode(ref.greedy_ids.slice(0, 2)));
    expect(reply.usage.completion_tokens).toBe(2);
    const stats = await engine.stats();
    expect(stats.memory?.weightMode).toBe('df11');
    expect(stats.memory?.resident).toEqual(loaded.memory.resident);
    expect(stats.df11!.ratio).toBeGreaterThan(0.6);
    expect(stats.df11!.ratio).toBeLessThan(0.8);
    console.log(JSON.stringify({ test: 'engine-gpu df11 2 tokens', last: stats.last, df11: stats.df11 }));
  });

  it('chat at temperature 0 streams the HF greedy reference (48 tokens)', { timeout: SLOW }, async () => {
    const loaded = await engine.load('official', { mode: 'bf16', contextLength: 256 });
    expect(loaded.contextLength).toBe(256);
    const ref = refs[2];
    let text = '';
    const t0 = performance.now();
    for await (const chunk of await engine.chat.completions.create({
      messages: [{ role: 'user', content: 'Tell me a story about Max.' }],
      temperature: 0,
      max_tokens: ref.greedy_ids.length,
      stream: true,
    })) text += chunk.choices[0]?.delta.content ?? '';
    const seconds = (performance.now() - t0) / 1000;
    expect(text).toBe(ref.greedy_text);
    const stats = await engine.stats();
    console.log(JSON.stringify({ test: 'engine-gpu bf16 chat 48 tokens', seconds: +seconds.toFixed(2), last: stats.last }));
  });

  it('the next turn reuses the KV cache', { timeout: SLOW }, async () => {
    const ref = refs[2];
    const first = ref.greedy_text;
    const reply = await engine.chat.completions.create({
      messages: [{ role: 'user', content: 'Tell me a story about Max.' }, { role: 'assistant', content: first }, { role: 'user', content: 'More.' }],
      temperature: 0,
      max_tokens: 4,
    });
    const stats = await engine.stats();
    expect(stats.last!.prefillTokens).toBeLessThan(stats.last!.promptTokens);
    expect(reply.usage.completion_tokens).toBeGreaterThan(0);
  });
});
