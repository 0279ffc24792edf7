import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine.ts';
import type { ChatCompletionChunk, LoadProgress } from '../src/engine/types.ts';
import { isDf11Error } from '../src/errors.ts';
import { errorOf } from '../src/testing/error-code.ts';
import { createWorkerEngine } from '../src/worker/client.ts';
import { exposeEngine } from '../src/worker/expose.ts';
import type { Endpoint } from '../src/worker/protocol.ts';
import { maxMessage, refs, scriptedBackend, untilAborted } from './engine-scripted.ts';

/** The worker protocol over a MessageChannel: same structured cloning as a real Worker. */
function setup() {
  const { backend, generators } = scriptedBackend(256);
  const { port1, port2 } = new MessageChannel();
  exposeEngine(createEngine({ backend }), port1 as unknown as Endpoint);
  const engine = createWorkerEngine(port2 as unknown as Endpoint);
  port1.start();
  port2.start();
  const close = () => {
    port1.close();
    port2.close();
  };
  return { engine, generators, close };
}

describe('worker engine (client ↔ exposeEngine over a MessageChannel)', () => {
  it('typed errors cross the boundary with their code', async () => {
    const { engine, close } = setup();
    const e = await errorOf(engine.chat.completions.create({ messages: maxMessage }));
    expect(isDf11Error(e, 'not-loaded')).toBe(true);
    expect((e as Error).message).toMatch(/load/);
    close();
  });

  it('OpenAI fields cross too: logprobs and penalties arrive as in-thread, refused fields keep their code', async () => {
    const { engine, close } = setup();
    const { backend } = scriptedBackend();
    const local = createEngine({ backend });
    await Promise.all([engine.load('models/stories-15m'), local.load('models/stories-15m')]);
    const request = { messages: maxMessage, temperature: 0, max_completion_tokens: 4, logprobs: true, top_logprobs: 2, logit_bias: { '494': 50 }, frequency_penalty: 2 };
    const [remote, here] = await Promise.all([engine.chat.completions.create(request), local.chat.completions.create(request)]);
    expect(remote.choices[0]).toEqual(here.choices[0]);
    expect(remote.choices[0].logprobs?.content).toHaveLength(4);
    const e = await errorOf(engine.chat.completions.create({ messages: maxMessage, response_format: { type: 'json_object' } }));
    expect(isDf11Error(e, 'unsupported-parameter')).toBe(true);
    expect((e as Error).message).toMatch(/^response_format:/);
    close();
  });

  it('load reports progress; chat, stream and generate give the greedy reference', async () => {
    const { engine, close } = setup();
    const progress: LoadProgress[] = [];
    const loaded = await engine.load('models/stories-15m', { onProgress: (p) => progress.push(p) });
    expect(loaded.memory.weightBytes).toBe(700);
    expect(progress).toEqual([{ phase: 'download', loaded: 1, total: 1, file: 'config.json' }, { phase: 'ready', loaded: 1, total: 1 }]);

    const reply = await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48 });
    expect(reply.choices[0].message.content).toBe(refs[2].greedy_text);

    const chunks: ChatCompletionChunk[] = [];
    for await (const c of await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48, stream: true })) chunks.push(c);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(refs[2].greedy_text);
    expect(chunks.at(-1)?.usage?.completion_tokens).toBe(48);

    let text = '';
    for await (const piece of engine.generate(refs[0].prompt, { temperature: 0, max_tokens: 48 })) text += piece;
    expect(text).toBe(refs[0].greedy_text);
    expect((await engine.stats()).last?.completionTokens).toBe(48);
    close();
  });

  it('abort ends the stream at once; the worker stops within a token; the next request works', async () => {
    const { engine, generators, close } = setup();
    await engine.load('models/stories-15m');
    // The worker side runs ahead of the client: it holds its 4th forward call (3 tokens sampled and posted)
    // until the client's abort reaches it, so the stream cannot finish before the abort.
    let held = false;
    generators[0].onStep = (fedCalls, signal) => {
      if (held || fedCalls !== 4) return;
      held = true;
      return untilAborted(signal);
    };
    const controller = new AbortController();
    const stream = await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48, stream: true, signal: controller.signal });
    let pieces = 0;
    const err = await errorOf((async () => {
      for await (const c of stream) if (c.choices[0]?.delta.content && ++pieces === 3) controller.abort();
    })());
    expect(isDf11Error(err, 'aborted')).toBe(true);
    const reply = await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48 });
    expect(reply.choices[0].message.content).toBe(refs[2].greedy_text);
    // the aborted request fed the prompt and 3 tokens: its held 4th call was the last
    const fedByAborted = generators[0].fed.slice(1).findIndex((f) => f.length > 1); // next prefill = next request
    expect(held).toBe(true);
    expect(fedByAborted).toBe(3);
    close();
  });

  it('breaking out of a stream early aborts the call in the worker', async () => {
    const { engine, generators, close } = setup();
    await engine.load('models/stories-15m');
    // held at its 2nd forward call (one token sampled and posted) until the break's abort reaches the worker
    let held = false;
    generators[0].onStep = (fedCalls, signal) => {
      if (held || fedCalls !== 2) return;
      held = true;
      return untilAborted(signal);
    };
    for await (const piece of engine.generate(refs[1].prompt, { temperature: 0, max_tokens: 48 })) if (piece) break;
    // Requests queue: the next one runs once the broken-off one has stopped; its prompt is the next long feed.
    expect((await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 3 })).usage.completion_tokens).toBe(3);
    const fedByBroken = generators[0].fed.slice(1).findIndex((f) => f.length > 1) + 1;
    expect(held).toBe(true);
    expect(fedByBroken).toBe(2);
    close();
  });
});
