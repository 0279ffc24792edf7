/**
 * The public Engine interface, shaped like OpenAI's chat API. Implemented in-thread (engine.ts) and by
 * the worker proxy (src/worker/client.ts); everything crosses a worker boundary, so every value here is
 * structured-cloneable and every method is async.
 */
import type { SerializedError } from '../errors.ts';
import type { WeightMode } from '../model/layout.ts';
import type { GeneratorMemory } from '../model/token-generator.ts';

export type Role = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: Role;
  content: string;
}

/** Sampling and stopping; every field optional (defaults: temperature 1, no filters, up to the context). */
export interface SamplingOptions {
  /** 0 = greedy. */
  temperature?: number;
  top_p?: number;
  /** 0 = off. */
  top_k?: number;
  min_p?: number;
  /** 1 = off; HF semantics (divide positive logits, multiply negative ones). */
  repetition_penalty?: number;
  /** Same seed, same tokens. */
  seed?: number;
  max_tokens?: number;
  /** OpenAI's newer name for max_tokens; give one or the other (or both equal). */
  max_completion_tokens?: number;
  /** In [-2, 2]; subtracted once from the logit of every token already in the completion (OpenAI semantics). */
  presence_penalty?: number;
  /** In [-2, 2]; subtracted from a token's logit once per time it occurs in the completion (OpenAI semantics). */
  frequency_penalty?: number;
  /** Token id (as a string key, like OpenAI's JSON) → bias in [-100, 100] added to its logit before sampling. */
  logit_bias?: Record<string, number>;
  /** Strings that end the answer; they are not part of it. */
  stop?: string | string[];
}

export interface GenerateOptions extends SamplingOptions {
  signal?: AbortSignal;
}

export interface ChatCompletionRequestBase extends SamplingOptions {
  messages: ChatMessage[];
  signal?: AbortSignal;
  /** Return the log probability of each completion token (of the model's raw logits, before any sampling option). */
  logprobs?: boolean;
  /** With logprobs: also the this many most likely tokens at each position, 0..20. */
  top_logprobs?: number;
  /** Only 1 is supported; more is Df11Error('unsupported-parameter'). */
  n?: number;
  /** Not supported: a non-empty list is Df11Error('unsupported-parameter'). */
  tools?: unknown[];
  /** Not supported: anything but 'none' is Df11Error('unsupported-parameter'). */
  tool_choice?: unknown;
  /** Only `{ type: 'text' }` is supported; JSON modes are Df11Error('unsupported-parameter'). */
  response_format?: { type: 'text' | 'json_object' | 'json_schema'; [key: string]: unknown };
}

export interface ChatCompletionRequestNonStreaming extends ChatCompletionRequestBase {
  stream?: false;
}

export interface ChatCompletionRequestStreaming extends ChatCompletionRequestBase {
  stream: true;
}

export type ChatCompletionRequest = ChatCompletionRequestNonStreaming | ChatCompletionRequestStreaming;

/** 'stop': a stop token or string; 'length': max_tokens or the context is full. */
export type FinishReason = 'stop' | 'length';

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** One candidate token and its log probability (natural log). */
export interface TopLogprob {
  token: string;
  logprob: number;
  /** UTF-8 bytes of `token` (the token decoded alone: a token holding part of a multi-byte character reads as U+FFFD). */
  bytes: number[];
}

/** A completion token with its log probability and, when asked for, the most likely alternatives. */
export interface TokenLogprob extends TopLogprob {
  top_logprobs: TopLogprob[];
}

/** OpenAI's `choices[i].logprobs`: null unless the request set `logprobs: true`. */
export interface ChoiceLogprobs {
  content: TokenLogprob[];
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: [{ index: 0; message: { role: 'assistant'; content: string }; logprobs: ChoiceLogprobs | null; finish_reason: FinishReason }];
  usage: CompletionUsage;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  /** Empty on the final usage chunk. */
  choices: { index: 0; delta: { role?: 'assistant'; content?: string }; logprobs?: ChoiceLogprobs | null; finish_reason: FinishReason | null }[];
  /** Only on the final chunk. */
  usage?: CompletionUsage;
}

export interface LoadProgress {
  /** What is happening now (compress: a BF16 model's units encoded to DF11 and stored, once). */
  phase: 'download' | 'compress' | 'upload' | 'compile' | 'ready';
  /** Bytes (download), units (compress, upload) or steps (compile) done and expected; total 0 when unknown. */
  loaded: number;
  total: number;
  /** The file being fetched, or the unit just compressed, when there is one. */
  file?: string;
  /** Download rate and time left, when known. */
  bytesPerSecond?: number;
  etaSeconds?: number | null;
  /** Once planned (phase 'upload'): the context and what is resident in BF16 (see GeneratorMemory.resident). */
  plan?: { contextLength: number; resident: GeneratorMemory['resident'] };
}

export interface LoadOptions {
  onProgress?: (progress: LoadProgress) => void;
  signal?: AbortSignal;
  /**
   * GPU bytes the model may use in all (weights, transient, KV cache); the rest of the context is cut.
   * Default: from the adapter's limits and the browser's hints (src/model/budget.ts).
   */
  budget?: number;
  /**
   * How the weights stay resident: compressed (decoded per layer on the GPU) or plain BF16 (a DF11 model
   * is decoded once at load). Default: 'df11' on GPUs, 'bf16' on CPU adapters such as SwiftShader.
   */
  mode?: WeightMode;
  /**
   * KV cache length (positions) wanted; cut to what the budget buys. Default: what the budget buys (mode
   * 'df11': 4096 first, then residentLayers, and more context only once every layer is resident).
   */
  contextLength?: number;
  /**
   * The memory/speed dial of mode 'df11': layers kept decoded (resident BF16, decoded once at load; the LM
   * head too at numLayers), or 'auto' (default): as many as the budget allows after the context. The
   * chosen split is in LoadResult.memory.resident and stats().memory.resident.
   */
  residentLayers?: number | 'auto';
  /** KV cache element type: 'f16' (half the memory, twice the context) or 'f32'. Default: f16 on GPUs, f32 on CPU adapters. */
  kvCache?: 'f16' | 'f32';
  /**
   * Access token (a Hugging Face token) for gated or private repos: sent only to the model's own origin,
   * never to a redirect target on another origin. Without it such repos fail with `access-denied`.
   */
  accessToken?: string;
}

export interface LoadResult {
  model: string;
  contextLength: number;
  memory: GeneratorMemory;
}

export interface EngineStats {
  /** The loaded model's source, null when none. */
  model: string | null;
  contextLength: number;
  /** Positions currently in the KV cache. */
  position: number;
  memory: GeneratorMemory | null;
  /** BF16 weight bytes minus resident weight bytes (what DF11 saves), and their ratio. */
  df11: { bf16Bytes: number; storedBytes: number; ratio: number } | null;
  /** Of the last request; null before the first. */
  last: {
    promptTokens: number;
    /** Prompt tokens fed this time (fewer than promptTokens when the KV cache was reused). */
    prefillTokens: number;
    completionTokens: number;
    prefillTokensPerSecond: number;
    decodeTokensPerSecond: number;
  } | null;
}

export interface ChatCompletions {
  create(request: ChatCompletionRequestStreaming): Promise<AsyncIterable<ChatCompletionChunk>>;
  create(request: ChatCompletionRequestNonStreaming): Promise<ChatCompletion>;
  create(request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
}

/**
 * What the engine reports outside any request: the GPU device was lost (the request in flight, if any,
 * failed with Df11Error('device-lost')), then either `recovered` (the model is loaded again from the local
 * files, the conversation's KV cache restored, requests run again) or, after RECOVERY_ATTEMPTS failures,
 * `recovery-failed` (every request fails with `error` until the next load()).
 */
export type EngineEvent =
  | { type: 'device-lost'; model: string; message: string }
  | { type: 'recovered'; model: string; attempts: number; restoredTokens: number }
  | { type: 'recovery-failed'; model: string; attempts: number; error: SerializedError };

export interface Engine {
  load(source: string, options?: LoadOptions): Promise<LoadResult>;
  /** Listen to engine events (device loss and recovery); returns the function that stops listening. */
  onEvent(listener: (event: EngineEvent) => void): () => void;
  readonly chat: { readonly completions: ChatCompletions };
  /** Raw completion of `prompt` (no chat template), as text pieces. */
  generate(prompt: string, options?: GenerateOptions): AsyncIterable<string>;
  stats(): Promise<EngineStats>;
  unload(): Promise<void>;
}
