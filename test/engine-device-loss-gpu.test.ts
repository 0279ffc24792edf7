// Device loss on the real GPU forward (Dawn; SwiftShader in CI): the device is destroyed while a decode
// step is in flight, across the worker protocol. The request fails with device-lost, the engine makes a new
// device, loads the weights again from the files of the load (not fetched again), restores the KV cache,
// and the next turn extends it with the same answer a fresh cache gives.
import { afterAll, describe, expect, it } from 'vitest';
import type { EngineBackend } from '../src/engine/backend.ts';
import { createEngine } from '../src/engine/engine.ts';
import { nodeBackend } from '../src/engine/node-backend.ts';
import type { EngineEvent } from '../src/engine/types.ts';
import { isDf11Error } from '../src/errors.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { errorOf } from '../src/testing/error-code.ts';
import { createWorkerEngine } from '../src/worker/client.ts';
import { exposeEngine } from '../src/worker/expose.ts';
import type { Endpoint } from '../src/worker/protocol.ts';
import { maxMessage, refs } from './engine-scripted.ts';

const SLOW = 600_000;
const gpus: Gpu[] = [];
let fetches = 0;
/** Decode calls until the one during which the device is destroyed (0: none). */
let destroyAtDecode = 0;

const node = nodeBackend({ onGpu: (g) => gpus.push(g) });
/** The Node backend, counting file fetches and destroying the device right after a decode step was submitted. */
const backend: EngineBackend = {
  fetchFiles: (source, options) => {
    fetches++;
    return node.fetchFiles(source, options);
  },
  createGenerator: async (files, options) => {
    const generator = await node.createGenerator(files, options);
    return new Proxy(generator, {
      get(target, key) {
        if (key !== 'decode') return Reflect.get(target, key);
        return (id: number, signal?: AbortSignal) => {
          const step = target.decode(id, signal);
          if (destroyAtDecode > 0 && --destroyAtDecode === 0) gpus.at(-1)!.device.destroy();
          return step;
        };
      },
    });
  },
};

const { port1, port2 } = new MessageChannel();
const local = createEngine({ backend });
exposeEngine(local, port1 as unknown as Endpoint);
port1.start();
port2.start();
const engine = createWorkerEngine(port2 as unknown as Endpoint);
afterAll(async () => {
  await local.unload();
  for (const g of gpus) g.device.destroy();
  port1.close();
  port2.close();
}, 60_000);

describe('device loss on the GPU (Dawn), across the worker protocol', () => {
  it('a device destroyed mid-generation: device-lost, then recovered from the local files with the KV cache restored', { timeout: SLOW }, async () => {
    await engine.load('models/stories-15m', { mode: 'bf16', contextLength: 128 });
    const events: EngineEvent[] = [];
    const recovered = new Promise<EngineEvent>((resolve) => engine.onEvent((e) => (events.push(e), e.type === 'recovered' && resolve(e))));

    destroyAtDecode = 3;
    const stream = await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48, stream: true });
    let text = '';
    const error = await errorOf((async () => {
      for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
    })());
    expect(isDf11Error(error, 'device-lost')).toBe(true);
    expect(refs[2].greedy_text.startsWith(text)).toBe(true);

    // the prompt and the two tokens decoded before the destroyed step (the third was streamed, never fed)
    const restoredTokens = refs[2].input_ids.length + 2;
    expect(await recovered).toEqual({ type: 'recovered', model: 'models/stories-15m', attempts: 1, restoredTokens });
    expect(events.map((e) => e.type)).toEqual(['device-lost', 'recovered']);
    expect(gpus).toHaveLength(2);
    expect(fetches).toBe(1);
    expect((await engine.stats()).position).toBe(restoredTokens);

    // the next turn extends the restored cache, and answers as a cache filled from scratch does
    const messages = [...maxMessage, { role: 'assistant' as const, content: text }, { role: 'user' as const, content: 'More.' }];
    const request = { messages, temperature: 0, max_tokens: 6 };
    const restored = await engine.chat.completions.create(request);
    const afterRestore = (await engine.stats()).last!;
    expect(afterRestore.prefillTokens).toBe(afterRestore.promptTokens - restoredTokens);
    const fresh = await engine.chat.completions.create(request); // a prefix of the cache: fed from position 0
    expect((await engine.stats()).last!.prefillTokens).toBe(afterRestore.promptTokens);
    expect(restored.choices[0].message.content).toBe(fresh.choices[0].message.content);
    expect(restored.usage.completion_tokens).toBe(6);
  });
});
