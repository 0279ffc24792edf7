import type { Df11Error } from '../errors.ts';
import type { ModelSpec } from '../format/model-spec.ts';
import type { WeightMode } from './layout.ts';

/**
 * The contract between the GPU forward (this folder) and the engine (sampler, tokenizer, chat API):
 * feed token ids, get logits of the last fed position. The KV cache lives behind it.
 */
export interface TokenGenerator {
  readonly spec: ModelSpec;
  /** Positions the KV cache holds; prefill past it throws Df11Error('context-overflow'). */
  readonly contextLength: number;
  /** Positions already in the KV cache. */
  readonly position: number;
  /**
   * Resolves (never rejects) with Df11Error('device-lost') once the GPU device under this generator is
   * lost; absent where there is no device to lose. The engine re-creates the generator then (engine.ts).
   */
  readonly lost?: Promise<Df11Error>;
  /** Append tokens to the cache (chunked internally) and return the last position's logits.  (vocabSize) */
  prefill(ids: ArrayLike<number>, signal?: AbortSignal): Promise<Float32Array>;
  /** Append one token and return its logits.  (vocabSize) */
  decode(id: number, signal?: AbortSignal): Promise<Float32Array>;
  /** Forget the cache contents (positions restart at 0). */
  reset(): void;
  memory(): GeneratorMemory;
  dispose(): void;
}

/** GPU bytes held by a loaded model, by part. */
export interface GeneratorMemory {
  weightMode: WeightMode;
  /** Resident weights: DF11 units (or BF16 matrices) plus norms and biases. */
  weightBytes: number;
  /** What the same weights take in BF16 (equal to weightBytes in bf16 mode). */
  bf16WeightBytes: number;
  /** Transient buffer the DF11 matrices of one layer are decoded into (0 in bf16 mode). */
  transientBytes: number;
  kvCacheBytes: number;
  /** Activations of one forward step (incl. embedding rows, the RoPE table and the logits readback). */
  activationBytes: number;
  /**
   * The memory/speed dial (layout.ts Residency): layers 0..layers-1 and, if `head`, the LM head are
   * resident BF16; the rest is decoded per step from DF11. bf16 mode: every layer and the head.
   */
  resident: { layers: number; totalLayers: number; head: boolean };
}
