// Device loss on the scripted backend: the request in flight fails with device-lost, the engine loads the
// model again from its files, restores the KV cache and goes on (`recovered`), in the thread and across
// the worker boundary; RECOVERY_ATTEMPTS failures leave a typed error until the next load. The real GPU
// (a destroyed Dawn device) is in engine-device-loss-gpu.test.ts, Chromium in e2e/device-loss.spec.ts.
import { describe, expect, it } from 'vitest';
import type { EngineBackend } from '../src/engine/backend.ts';
import { createEngine, RECOVERY_ATTEMPTS } from '../src/engine/engine.ts';
import type { Engine, EngineEvent } from '../src/engine/types.ts';
import { failOnDeviceLoss } from '../src/model/open-generator.ts';
import { Df11Error, isDf11Error } from '../src/errors.ts';
import { errorOf } from '../src/testing/error-code.ts';
import { createWorkerEngine } from '../src/worker/client.ts';
import { exposeEngine } from '../src/worker/expose.ts';
import type { Endpoint } from '../src/worker/protocol.ts';
import { maxMessage, refs, scriptedBackend, type ScriptedGenerator } from './engine-scripted.ts';

/** The scripted backend where every generator has a device of its own that the test can lose, and loads can be made to fail. */
function losableBackend() {
  const { backend, generators } = scriptedBackend(256);
  const devices: ((e: Df11Error) => void)[] = [];
  let failLoads = 0;
  let loseInFirstStep = false;
  let loads = 0;
  const losable: EngineBackend = {
    fetchFiles: backend.fetchFiles,
    createGenerator: async (files, options) => {
      loads++;
      if (failLoads > 0) {
        failLoads--;
        throw new Df11Error('no-webgpu', 'Could not create a WebGPU device: test');
      }
      const lost = new Promise<Df11Error>((resolve) => devices.push(resolve));
      const generator = (await backend.createGenerator(files, options)) as ScriptedGenerator;
      if (loseInFirstStep) {
        loseInFirstStep = false;
        loseAtStep(generator, 1);
      }
      return failOnDeviceLoss(generator, lost);
    },
  };
  const lose = () => devices.at(-1)!(new Df11Error('device-lost', 'GPU device lost (destroyed): test'));
  /** The device is lost during the generator's `step`th forward step (1 = the first prefill), which fails as a dead device's work does. */
  const loseAtStep = (generator: ScriptedGenerator, step: number) => {
    let steps = 0;
    generator.onStep = () => {
      if (++steps !== step) return;
      generator.onStep = undefined;
      lose();
      throw new Df11Error('device-lost', 'GPU device lost (destroyed): test');
    };
  };
  return {
    backend: losable,
    generators,
    loads: () => loads,
    /** Lose the device of the newest generator. */
    lose,
    /** Lose the newest generator's device in its `step`th forward step from now. */
    loseAtStep: (step: number) => loseAtStep(generators.at(-1)!, step),
    failNextLoads: (n: number) => (failLoads = n),
    /** The next generator's device is lost in its first step (the restore of the KV cache, in a recovery). */
    loseNextInFirstStep: () => (loseInFirstStep = true),
  };
}

/** The engine in the thread, or behind the worker protocol over a MessageChannel. */
function engineOver(where: 'thread' | 'worker', backend: EngineBackend): Engine {
  const local = createEngine({ backend });
  if (where === 'thread') return local;
  const { port1, port2 } = new MessageChannel();
  exposeEngine(local, port1 as unknown as Endpoint);
  port1.start();
  port2.start();
  return createWorkerEngine(port2 as unknown as Endpoint);
}

/** The next engine event of `type` (events are awaited, never timed). */
function nextEvent<T extends EngineEvent['type']>(engine: Engine, type: T): Promise<Extract<EngineEvent, { type: T }>> {
  return new Promise((resolve) => {
    const stop = engine.onEvent((e) => {
      if (e.type !== type) return;
      stop();
      resolve(e as Extract<EngineEvent, { type: T }>);
    });
  });
}

/** Stream the reference chat (the device is set to be lost in it); the stream's error and the text it gave. */
async function chatUntilLost(engine: Engine): Promise<{ error: unknown; text: string }> {
  const stream = await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48, stream: true });
  let text = '';
  const error = await errorOf((async () => {
    for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
  })());
  return { error, text };
}

describe('device loss', () => {
  for (const where of ['thread', 'worker'] as const) {
    it(`the request in flight fails with device-lost, then the engine recovers and the conversation goes on (${where})`, async () => {
      const gpu = losableBackend();
      const engine = engineOver(where, gpu.backend);
      await engine.load('models/stories-15m');
      const events: EngineEvent[] = [];
      engine.onEvent((e) => events.push(e));
      const recovered = nextEvent(engine, 'recovered');

      gpu.loseAtStep(4); // the prompt and two tokens in
      const { error, text } = await chatUntilLost(engine);
      expect(isDf11Error(error, 'device-lost')).toBe(true);
      expect(refs[2].greedy_text.startsWith(text)).toBe(true);
      expect(text.length).toBeLessThan(refs[2].greedy_text.length);

      // reloaded once, from the files of the load; the new KV cache got every id the lost one held
      const fedBeforeLoss = gpu.generators[0].fed.slice(0, -1).flat(); // the last step failed
      expect(fedBeforeLoss).toEqual([...refs[2].input_ids, ...refs[2].greedy_ids.slice(0, 2)]);
      expect(await recovered).toEqual({ type: 'recovered', model: 'models/stories-15m', attempts: 1, restoredTokens: fedBeforeLoss.length });
      expect(events.map((e) => e.type)).toEqual(['device-lost', 'recovered']);
      expect(gpu.loads()).toBe(2);
      expect(gpu.generators[0].disposed).toBe(true);
      expect(gpu.generators[1].fed).toEqual([fedBeforeLoss]);
      expect((await engine.stats()).position).toBe(fedBeforeLoss.length);

      // the next turn extends the restored cache: only its new tokens are fed
      const messages = [...maxMessage, { role: 'assistant' as const, content: text }, { role: 'user' as const, content: 'More.' }];
      const reply = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 4 });
      expect(reply.usage.completion_tokens).toBe(4);
      const last = (await engine.stats()).last!;
      expect(last.prefillTokens).toBe(last.promptTokens - fedBeforeLoss.length);
      expect(gpu.generators[1].fed[1]).toHaveLength(last.prefillTokens);
      // and a fresh conversation gives the greedy reference again
      const again = await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48 });
      expect(again.choices[0].message.content).toBe(refs[2].greedy_text);
    });
  }

  it('a loss while idle recovers before the next request runs; requests queued meanwhile run after it', async () => {
    const gpu = losableBackend();
    const engine = createEngine({ backend: gpu.backend });
    await engine.load('models/stories-15m');
    await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 2 });
    const recovered = nextEvent(engine, 'recovered');
    gpu.lose();
    const reply = await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48 });
    expect((await recovered).restoredTokens).toBe(refs[2].input_ids.length + 1);
    expect(reply.choices[0].message.content).toBe(refs[2].greedy_text);
    expect(gpu.generators).toHaveLength(2);
  });

  it('a failed device creation and a device lost again while the cache is restored cost one attempt each', async () => {
    const gpu = losableBackend();
    const engine = createEngine({ backend: gpu.backend });
    await engine.load('models/stories-15m');
    const recovered = nextEvent(engine, 'recovered');
    gpu.failNextLoads(1);
    gpu.loseNextInFirstStep();
    gpu.loseAtStep(2);
    const { error } = await chatUntilLost(engine);
    expect(isDf11Error(error, 'device-lost')).toBe(true);
    expect((await recovered).attempts).toBe(3);
    expect(gpu.loads()).toBe(4);
    expect(gpu.generators.map((g) => g.disposed)).toEqual([true, true, false]);
    const reply = await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48 });
    expect(reply.choices[0].message.content).toBe(refs[2].greedy_text);
  });

  for (const where of ['thread', 'worker'] as const) {
    it(`after ${RECOVERY_ATTEMPTS} failed attempts every request fails with device-lost until the next load (${where})`, async () => {
      const gpu = losableBackend();
      const engine = engineOver(where, gpu.backend);
      await engine.load('models/stories-15m');
      const failed = nextEvent(engine, 'recovery-failed');
      gpu.failNextLoads(RECOVERY_ATTEMPTS);
      gpu.loseAtStep(2);
      const { error } = await chatUntilLost(engine);
      expect(isDf11Error(error, 'device-lost')).toBe(true);
      const event = await failed;
      expect(event.attempts).toBe(RECOVERY_ATTEMPTS);
      expect(event.error.code).toBe('device-lost');
      expect(gpu.loads()).toBe(1 + RECOVERY_ATTEMPTS);
      for (let i = 0; i < 2; i++) {
        const later = await errorOf(engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 2 }));
        expect(isDf11Error(later, 'device-lost')).toBe(true);
        expect((later as Error).message).toMatch(new RegExp(`${RECOVERY_ATTEMPTS} attempts`));
      }
      expect(gpu.loads()).toBe(1 + RECOVERY_ATTEMPTS); // no retry behind the user's back
      await engine.load('models/stories-15m');
      const reply = await engine.chat.completions.create({ messages: maxMessage, temperature: 0, max_tokens: 48 });
      expect(reply.choices[0].message.content).toBe(refs[2].greedy_text);
    });
  }
});
