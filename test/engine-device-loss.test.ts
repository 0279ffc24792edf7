import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine.ts';
import { failOnDeviceLoss } from '../src/model/open-generator.ts';
import { Df11Error, isDf11Error } from '../src/errors.ts';
import { refs, scriptedBackend } from './engine-scripted.ts';

describe('device loss', () => {
  it('a lost device fails the request in flight and every later one with device-lost', async () => {
    let loseDevice!: (e: Df11Error) => void;
    const lost = new Promise<Df11Error>((resolve) => (loseDevice = resolve));
    // The stream is pulled, so the loss (signalled while the consumer holds piece 2) comes before the next step.
    const { backend } = scriptedBackend();
    const engine = createEngine({
      backend: { ...backend, createGenerator: async (files, o) => failOnDeviceLoss(await backend.createGenerator(files, o), lost) },
    });
    await engine.load('models/stories-15m');
    const messages = [{ role: 'user' as const, content: 'Tell me a story about Max.' }];
    const stream = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 48, stream: true });
    let pieces = 0;
    let error: unknown;
    try {
      for await (const c of stream) if (c.choices[0]?.delta.content && ++pieces === 2) loseDevice(new Df11Error('device-lost', 'GPU device lost (unknown): test'));
    } catch (e) {
      error = e;
    }
    expect(isDf11Error(error, 'device-lost')).toBe(true);
    expect(pieces).toBeLessThan(refs[2].greedy_ids.length);
    let later: unknown;
    await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 4 }).catch((e: unknown) => (later = e));
    expect(isDf11Error(later, 'device-lost')).toBe(true);
  });
});
