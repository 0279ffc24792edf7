/**
 * The messages between a worker engine client (client.ts) and the worker (expose.ts). Each call has an
 * id; the worker answers with at most one `started` (streaming calls, once the request is accepted),
 * any number of pushed `event`s (progress, stream chunks: no round trip per token), then exactly one
 * `result` or `error`. The client may send `abort` for a call at any time. Engine events (device loss and
 * recovery) arrive as `notice`s, outside any call.
 */
import type { SerializedError } from '../errors.ts';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequestNonStreaming,
  ChatCompletionRequestStreaming,
  EngineEvent,
  EngineStats,
  GenerateOptions,
  LoadOptions,
  LoadProgress,
  LoadResult,
} from '../engine/types.ts';

type NoSignal<T> = Omit<T, 'signal' | 'onProgress'>;

/** Per method: what the client sends, what the worker pushes meanwhile, what it answers with. */
export interface Calls {
  load: { params: { source: string; options: NoSignal<LoadOptions> }; event: LoadProgress; result: LoadResult };
  unload: { params: null; event: never; result: null };
  stats: { params: null; event: never; result: EngineStats };
  chat: { params: NoSignal<ChatCompletionRequestNonStreaming>; event: never; result: ChatCompletion };
  chatStream: { params: NoSignal<ChatCompletionRequestStreaming>; event: ChatCompletionChunk; result: null };
  generate: { params: { prompt: string; options: NoSignal<GenerateOptions> }; event: string; result: null };
}

export type Method = keyof Calls;

/** Calls whose iterable the client hands out once the worker has accepted the request. */
export const STREAMING: ReadonlySet<Method> = new Set<Method>(['chatStream', 'generate']);

export type CallMessage = { [M in Method]: { type: 'call'; id: number; method: M; params: Calls[M]['params'] } }[Method];

export type ClientMessage = CallMessage | { type: 'abort'; id: number };

export type WorkerMessage =
  | { type: 'started'; id: number }
  | { [M in Method]: { type: 'event'; id: number; method: M; event: Calls[M]['event'] } }[Method]
  | { [M in Method]: { type: 'result'; id: number; method: M; result: Calls[M]['result'] } }[Method]
  | { type: 'error'; id: number; error: SerializedError }
  | { type: 'notice'; event: EngineEvent };

/** What both ends of the channel need: a Worker, a worker's global scope, or a MessagePort. */
export interface Endpoint {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
}
