/**
 * Harness for e2e/device-loss.spec.ts: the worker engine (createWorkerEngine) over engine-loss-worker.ts,
 * whose GPU device the spec destroys mid-answer, on `window.df11Loss`; results are plain data.
 */
import type { ChatMessage, EngineEvent } from '../src/engine/types.ts';
import { isDf11Error } from '../src/errors.ts';
import { createWorkerEngine } from '../src/worker/client.ts';
import { CONTROL, type ControlReply, type ControlRequest } from './engine-loss-control.ts';

export interface ChatReport {
  text: string;
  error: { code: string; message: string } | null;
}

const worker = new Worker(new URL('./engine-loss-worker.ts', import.meta.url), { type: 'module' });
const engine = createWorkerEngine(worker);
const events: EngineEvent[] = [];
const waiters: (() => void)[] = [];
engine.onEvent((e) => {
  events.push(e);
  for (const wake of waiters.splice(0)) wake();
});
const control = new BroadcastChannel(CONTROL);

/** Ask the worker; its answer (the number of devices it made). */
function ask(request: ControlRequest): Promise<number> {
  return new Promise((resolve) => {
    control.onmessage = (event: MessageEvent<ControlReply>) => resolve(event.data.devices);
    control.postMessage(request);
  });
}

async function chat(messages: ChatMessage[], maxTokens: number): Promise<ChatReport> {
  let text = '';
  try {
    const stream = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: maxTokens, stream: true });
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    return { text, error: null };
  } catch (e) {
    return { text, error: isDf11Error(e) ? { code: e.code, message: e.message } : { code: 'not-df11', message: String(e) } };
  }
}

/** The first event of `type`, once there is one. */
async function event(type: EngineEvent['type']): Promise<EngineEvent> {
  for (;;) {
    const found = events.find((e) => e.type === type);
    if (found) return found;
    await new Promise<void>((resolve) => waiters.push(resolve));
  }
}

const api = {
  load: async (source: string) => (await engine.load(source, { mode: 'bf16' })).contextLength,
  arm: () => ask('arm'),
  devices: () => ask('devices'),
  chat,
  event,
  events: () => events.slice(),
};

declare global {
  interface Window {
    df11Loss: typeof api;
  }
}
window.df11Loss = api;
const state = document.getElementById('state')!;
state.textContent = 'ready';
state.dataset.state = 'ready';
