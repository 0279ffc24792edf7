import { Df11Error, deserializeError } from '../errors.ts';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletions,
  Engine,
  EngineEvent,
  EngineStats,
  GenerateOptions,
  LoadOptions,
  LoadResult,
} from '../engine/types.ts';
import type { Calls, ClientMessage, Endpoint, Method, WorkerMessage } from './protocol.ts';

/** One call in flight: where its pushed events, acceptance and answer go. */
interface Pending {
  onEvent(event: unknown): void;
  onStarted(): void;
  settle(error: Df11Error | null, result?: unknown): void;
}

/**
 * An Engine whose work runs in a worker (see worker.ts / expose.ts). Same interface as the in-thread
 * engine; errors arrive as the same typed Df11Error; streams are pushed by the worker.
 */
export function createWorkerEngine(endpoint: Endpoint): Engine {
  const pending = new Map<number, Pending>();
  const listeners = new Set<(event: EngineEvent) => void>();
  let nextId = 1;
  endpoint.addEventListener('message', (event: MessageEvent<WorkerMessage>) => {
    const m = event.data;
    if (m.type === 'notice') {
      for (const listener of listeners) listener(m.event);
      return;
    }
    const p = pending.get(m.id);
    if (!p) return; // a call the client already gave up on (aborted)
    if (m.type === 'event') p.onEvent(m.event);
    else if (m.type === 'started') p.onStarted();
    else {
      pending.delete(m.id);
      if (m.type === 'error') p.settle(deserializeError(m.error));
      else p.settle(null, m.result);
    }
  });

  /** Send a call; `signal` aborts it on both sides at once. */
  function send<M extends Method>(method: M, params: Calls[M]['params'], signal: AbortSignal | undefined, handlers: Pending): number {
    if (signal?.aborted) throw new Df11Error('aborted', 'the request was aborted');
    const id = nextId++;
    pending.set(id, handlers);
    signal?.addEventListener('abort', () => abort(id), { once: true });
    endpoint.postMessage({ type: 'call', id, method, params } as ClientMessage);
    return id;
  }

  function abort(id: number): void {
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    endpoint.postMessage({ type: 'abort', id } satisfies ClientMessage);
    p.settle(new Df11Error('aborted', 'the request was aborted'));
  }

  function call<M extends Method>(method: M, params: Calls[M]['params'], signal?: AbortSignal, onEvent?: (e: Calls[M]['event']) => void): Promise<Calls[M]['result']> {
    return new Promise((resolve, reject) => {
      send(method, params, signal, {
        onEvent: (e) => onEvent?.(e as Calls[M]['event']),
        onStarted: () => {},
        settle: (error, result) => (error ? reject(error) : resolve(result as Calls[M]['result'])),
      });
    });
  }

  /** A streaming call: resolves once the worker accepted it, to an iterable of its pushed events. */
  function stream<M extends Method>(method: M, params: Calls[M]['params'], signal?: AbortSignal): Promise<AsyncIterable<Calls[M]['event']>> {
    const queue: Calls[M]['event'][] = [];
    let ended = false;
    let failure: Df11Error | null = null;
    let wake: (() => void) | null = null;
    const notify = () => {
      wake?.();
      wake = null;
    };
    return new Promise((resolve, reject) => {
      let accepted = false;
      const id = send(method, params, signal, {
        onEvent: (e) => {
          queue.push(e as Calls[M]['event']);
          notify();
        },
        onStarted: () => {
          accepted = true;
          resolve(iterate());
        },
        settle: (error) => {
          ended = true;
          failure = error;
          if (!accepted) {
            if (error) reject(error);
            else resolve(iterate());
          }
          notify();
        },
      });
      async function* iterate(): AsyncGenerator<Calls[M]['event']> {
        try {
          // bounded by the worker: it always ends a call with a result or an error
          for (;;) {
            if (queue.length > 0) yield queue.shift() as Calls[M]['event'];
            else if (failure) throw failure;
            else if (ended) return;
            else await new Promise<void>((r) => (wake = r));
          }
        } finally {
          if (!ended) abort(id); // the consumer stopped early
        }
      }
    });
  }

  const create = ((request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> => {
    const { signal, ...params } = request;
    return params.stream ? stream('chatStream', { ...params, stream: true }, signal) : call('chat', { ...params, stream: false }, signal);
  }) as ChatCompletions['create'];

  return {
    chat: { completions: { create } },
    load(source: string, options: LoadOptions = {}): Promise<LoadResult> {
      const { signal, onProgress, ...rest } = options;
      // a relative source means relative to this page, not to the worker's script
      const absolute = typeof document === 'undefined' ? source : new URL(source, document.baseURI).href;
      return call('load', { source: absolute, options: rest }, signal, onProgress);
    },
    generate(prompt: string, options: GenerateOptions = {}): AsyncIterable<string> {
      const { signal, ...rest } = options;
      return (async function* () {
        yield* await stream('generate', { prompt, options: rest }, signal);
      })();
    },
    onEvent(listener: (event: EngineEvent) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stats: (): Promise<EngineStats> => call('stats', null),
    unload: async (): Promise<void> => {
      await call('unload', null);
    },
  };
}
