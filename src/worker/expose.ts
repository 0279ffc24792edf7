import { Df11Error, isDf11Error, type SerializedError } from '../errors.ts';
import type { Engine } from '../engine/types.ts';
import type { CallMessage, ClientMessage, Endpoint, Method, WorkerMessage } from './protocol.ts';

/** Serve `engine` to the client on the other side of `endpoint` (the worker's global scope by default). */
export function exposeEngine(engine: Engine, endpoint: Endpoint = globalThis as unknown as Endpoint): void {
  const running = new Map<number, AbortController>();
  const post = (message: WorkerMessage) => endpoint.postMessage(message);
  engine.onEvent((event) => post({ type: 'notice', event }));

  endpoint.addEventListener('message', (event: MessageEvent<ClientMessage>) => {
    const message = event.data;
    if (message.type === 'abort') {
      running.get(message.id)?.abort();
      return;
    }
    const controller = new AbortController();
    running.set(message.id, controller);
    serve(engine, message, controller.signal, post)
      .catch((e: unknown) => post({ type: 'error', id: message.id, error: serialize(e, controller.signal) }))
      .finally(() => running.delete(message.id));
  });
}

async function serve(engine: Engine, call: CallMessage, signal: AbortSignal, post: (m: WorkerMessage) => void): Promise<void> {
  const { id } = call;
  const event = <M extends Method>(method: M) => (value: unknown) => post({ type: 'event', id, method, event: value } as WorkerMessage);
  switch (call.method) {
    case 'load': {
      const result = await engine.load(call.params.source, { ...call.params.options, signal, onProgress: event('load') });
      return post({ type: 'result', id, method: 'load', result });
    }
    case 'unload':
      await engine.unload();
      return post({ type: 'result', id, method: 'unload', result: null });
    case 'stats':
      return post({ type: 'result', id, method: 'stats', result: await engine.stats() });
    case 'chat': {
      const result = await engine.chat.completions.create({ ...call.params, stream: false, signal });
      return post({ type: 'result', id, method: 'chat', result });
    }
    case 'chatStream': {
      const stream = await engine.chat.completions.create({ ...call.params, stream: true, signal });
      post({ type: 'started', id });
      const push = event('chatStream');
      for await (const chunk of stream) push(chunk);
      return post({ type: 'result', id, method: 'chatStream', result: null });
    }
    case 'generate': {
      post({ type: 'started', id });
      const push = event('generate');
      for await (const piece of engine.generate(call.params.prompt, { ...call.params.options, signal })) push(piece);
      return post({ type: 'result', id, method: 'generate', result: null });
    }
  }
}

function serialize(e: unknown, signal: AbortSignal): SerializedError {
  if (isDf11Error(e)) return e.toJSON();
  return new Df11Error(signal.aborted ? 'aborted' : 'internal', e instanceof Error ? e.message : String(e)).toJSON();
}
