import { describe, expect, it, vi } from 'vitest';
import { createEngine } from '../src/engine/engine.ts';
import type { ChatCompletionChunk } from '../src/engine/types.ts';
import { Df11Error, isDf11Error } from '../src/errors.ts';
import { codeOf, errorOf } from '../src/testing/error-code.ts';
import { maxMessage, refs, scriptedBackend } from './engine-scripted.ts';

function setup(contextLength = 256) {
  const { backend, generators } = scriptedBackend(contextLength);
  return { engine: createEngine({ backend }), generators };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('LocalEngine', () => {
  it('refuses requests before load with not-loaded', async () => {
    const { engine } = setup();
    const e = await errorOf(engine.chat.completions.create({ messages: maxMessage }));
    expect(isDf11Error(e, 'not-loaded')).toBe(true);
    expect((await engine.stats()).model).toBeNull();
  });

  it('chat at temperature 0 gives the greedy continuation, with usage and finish_reason', async () => {
    const { engine } = setup();
    const progress: string[] = [];
    const loaded = await engine.load('models/stories-15m', { onProgress: (p) => progress.push(p.phase) });
    expect(loaded.contextLength).toBe(256);
    expect(progress).toEqual(['download', 'ready']);
    const reply = await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48 });
    expect(reply.choices[0].message.content).toBe(refs[2].greedy_text);
    expect(reply.choices[0].finish_reason).toBe('length');
    expect(reply.usage).toEqual({ prompt_tokens: 19, completion_tokens: 48, total_tokens: 67 });
    const stats = await engine.stats();
    expect(stats.last?.prefillTokens).toBe(19);
    expect(stats.df11).toEqual({ bf16Bytes: 1000, storedBytes: 700, ratio: 0.7 });
  });

  it('a failed second load leaves the first model loaded and answering', async () => {
    const { engine, generators } = setup();
    await engine.load('models/stories-15m');
    expect(await codeOf(engine.load('test/fixtures/hf/tiny-qwen3'))).toBe('config'); // no tokenizer.json
    expect((await engine.stats()).model).toBe('models/stories-15m');
    expect(generators[0]!.disposed).toBe(false);
    const reply = await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48 });
    expect(reply.choices[0].message.content).toBe(refs[2].greedy_text);
  });

  it('a second model that does not fit beside the first: the error says the first stays; it is swapped on success', async () => {
    const { backend, generators } = scriptedBackend();
    const reserved: Array<number | undefined> = [];
    let failNext = false;
    const engine = createEngine({
      backend: {
        fetchFiles: backend.fetchFiles,
        createGenerator: async (files, options) => {
          reserved.push(options.reservedBytes);
          if (failNext) throw new Df11Error('out-of-memory', 'no room');
          return backend.createGenerator(files, options);
        },
      },
    });
    await engine.load('models/stories-15m');
    failNext = true;
    const e = await errorOf(engine.load('models/stories-micro'));
    expect(isDf11Error(e, 'out-of-memory')).toBe(true);
    expect((e as Error).message).toMatch(/models\/stories-15m stays loaded/);
    const first = generators[0]!.memory();
    expect(reserved).toEqual([0, first.weightBytes + first.transientBytes + first.kvCacheBytes + first.activationBytes]);
    failNext = false;
    await engine.load('models/stories-micro');
    expect(generators[0]!.disposed).toBe(true);
    expect((await engine.stats()).model).toBe('models/stories-micro');
  });

  it('streams OpenAI-style chunks: role first, finish_reason last, then usage', async () => {
    const { engine } = setup();
    await engine.load('models/stories-15m');
    const chunks = await collect(await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48, stream: true }));
    const content = chunks.map((c: ChatCompletionChunk) => c.choices[0]?.delta.content ?? '').join('');
    expect(content).toBe(refs[2].greedy_text);
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    const [finish, usage] = chunks.slice(-2);
    expect(finish.choices[0].finish_reason).toBe('length');
    expect(usage.choices).toEqual([]);
    expect(usage.usage?.completion_tokens).toBe(48);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  });

  it('generate() streams raw completions of every reference prompt', async () => {
    const { engine } = setup();
    await engine.load('models/stories-15m');
    for (const ref of refs.slice(0, 2)) {
      const text = (await collect(engine.generate(ref.prompt, { temperature: 0, max_tokens: 48 }))).join('');
      expect(text).toBe(ref.greedy_text);
    }
  });

  it('stops at a stop string without emitting it, and at max_tokens', async () => {
    const { engine } = setup();
    await engine.load('models/stories-15m');
    const cut = refs[2].greedy_text.indexOf(' named');
    const reply = await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48, stop: [' named', 'zzz'] });
    expect(reply.choices[0].message.content).toBe(refs[2].greedy_text.slice(0, cut));
    expect(reply.choices[0].finish_reason).toBe('stop');
    const short = await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 5 });
    expect(short.usage.completion_tokens).toBe(5);
  });

  it('stops at an eos token from generation_config.json (<|im_end|>)', async () => {
    const { engine, generators } = setup();
    await engine.load('models/stories-15m');
    const g = generators[0];
    // make the scripted model answer "<|im_end|>" right after the prompt
    const logits = g['logits'].bind(g);
    g['logits'] = () => Object.assign(logits(), { 2: 99 });
    const reply = await engine.chat.completions.create({ messages: maxMessage, temperature: 0 });
    expect(reply.choices[0]).toMatchObject({ message: { content: '' }, finish_reason: 'stop' });
  });

  it('multi-turn chat feeds only the new tokens when the prompt extends the cache, else resets', async () => {
    const { engine, generators } = setup();
    await engine.load('models/stories-15m');
    const first = await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48 });
    const g = generators[0];
    const history = [...maxMessage, first.choices[0].message, { role: 'user' as const, content: 'And then?' }];
    const second = await engine.chat.completions.create({ messages: history, temperature: 0, max_tokens: 4 });
    const stats = await engine.stats();
    expect(stats.last!.promptTokens).toBe(second.usage.prompt_tokens);
    // the cache held prompt + 47 fed answer tokens (the 48th was sampled, not fed)
    expect(stats.last!.prefillTokens).toBe(second.usage.prompt_tokens - 19 - 47);
    const before = g.fed.length;
    await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Something else.' }], temperature: 0, max_tokens: 2 });
    expect((await engine.stats()).last!.prefillTokens).toBe((await engine.stats()).last!.promptTokens);
    expect(g.fed[before].length).toBe((await engine.stats()).last!.promptTokens);
  });

  it('the same seed gives the same sampled answer', async () => {
    const { engine } = setup();
    await engine.load('models/stories-15m');
    const ask = (seed: number) =>
      engine.chat.completions.create({ messages: maxMessage, temperature: 1.5, top_k: 20, seed, max_tokens: 12 }).then((r) => r.choices[0].message.content);
    const a = await ask(1);
    expect(await ask(1)).toBe(a);
  });

  it('abort ends a stream with an aborted error within a token, and the next request works', async () => {
    // The stream is pulled: the engine steps the generator only when the consumer asks for the next chunk.
    const { engine, generators } = setup();
    await engine.load('models/stories-15m');
    const controller = new AbortController();
    const stream = await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48, stream: true, signal: controller.signal });
    let pieces = 0;
    let fedAtAbort = 0;
    const err = await errorOf((async () => {
      for await (const c of stream) {
        if (c.choices[0]?.delta.content && ++pieces === 3) {
          controller.abort();
          fedAtAbort = generators[0].fed.length;
        }
      }
    })());
    expect(isDf11Error(err, 'aborted')).toBe(true);
    expect(generators[0].fed.length - fedAtAbort).toBeLessThanOrEqual(1);
    const reply = await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48 });
    expect(reply.choices[0].message.content).toBe(refs[2].greedy_text);
  });

  it('a consumer that stops reading early frees the engine for the next request', { timeout: 10_000 }, async () => {
    const { engine } = setup();
    await engine.load('models/stories-15m');
    for await (const piece of engine.generate(refs[0].prompt, { temperature: 0, max_tokens: 48 })) if (piece) break;
    for await (const c of await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48, stream: true })) {
      if (c.choices[0]?.delta.content) break;
    }
    const reply = await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48 });
    expect(reply.choices[0].message.content).toBe(refs[2].greedy_text);
  });

  it('decode tokens/s leaves out the time the consumer takes between chunks', async () => {
    // An explicit clock: each forward step takes 10 ms, the consumer 1 s per chunk.
    let now = 0;
    vi.spyOn(performance, 'now').mockImplementation(() => now);
    const { engine, generators } = setup();
    await engine.load('models/stories-15m');
    generators[0]!.onStep = () => void (now += 10);
    try {
      for await (const c of await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 10, stream: true })) {
        if (c.choices[0]?.delta.content) now += 1000;
      }
    } finally {
      vi.restoreAllMocks();
    }
    // 9 decode steps of 10 ms: 100 tokens/s; counting the consumer's seconds would give < 1.
    expect((await engine.stats()).last!.decodeTokensPerSecond).toBeCloseTo(100, 6);
  });

  it('requests queue: two at once both complete in order', async () => {
    const { engine } = setup();
    await engine.load('models/stories-15m');
    const [a, b] = await Promise.all([
      engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48 }),
      engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48 }),
    ]);
    expect(a.choices[0].message.content).toBe(refs[2].greedy_text);
    expect(b.choices[0].message.content).toBe(refs[2].greedy_text);
  });

  it('context: prompt longer than the cache is context-overflow; a full cache ends with length', async () => {
    const { engine } = setup(24);
    await engine.load('models/stories-15m');
    const e = await errorOf(engine.generate('word '.repeat(40), { temperature: 0 })[Symbol.asyncIterator]().next());
    expect(isDf11Error(e, 'context-overflow')).toBe(true);
    const reply = await engine.chat.completions.create({ messages: maxMessage, temperature: 0 });
    expect(reply.choices[0].finish_reason).toBe('length');
    expect(reply.usage.completion_tokens).toBe(24 - 19 + 1);
  });

  it('bad sampling options are rejected before anything runs; unload disposes the generator', async () => {
    const { engine, generators } = setup();
    await engine.load('models/stories-15m');
    expect(isDf11Error(await errorOf(engine.chat.completions.create({ messages: maxMessage, top_p: 2 })), 'bad-request')).toBe(true);
    expect(isDf11Error(await errorOf(engine.chat.completions.create({ messages: [] })), 'bad-request')).toBe(true);
    await engine.unload();
    expect(generators[0].disposed).toBe(true);
    expect(isDf11Error(await errorOf(engine.chat.completions.create({ messages: maxMessage })), 'not-loaded')).toBe(true);
  });
});

