/**
 * The TokenGenerator of the GPU forward: prefill in chunks (tiled GEMM), decode one token (GEMV), logits
 * of the last position read back as f32.
 *
 * Callers open a model through openGenerator (open-generator.ts), which plans the context first.
 *
 * mode 'df11' keeps DF11 units resident and decodes one layer at a time (except the layers `resident` keeps
 * decoded); a BF16 directory is compressed on load. mode 'bf16' keeps plain BF16 matrices; a DF11 directory is decoded once at load. Both give the
 * same logits bit for bit (DF11 is lossless and the kernels are the same).
 */
import { Df11Error } from '../errors.ts';
import type { ModelSpec } from '../format/model-spec.ts';
import type { ModelWeights } from '../format/model-reader.ts';
import type { GeneratorMemory, TokenGenerator } from './token-generator.ts';
import { isCpuAdapter, type Gpu } from '../gpu/gpu.ts';
import type { KvDtype } from '../gpu/kernels/kv-dtype.ts';
import type { MatmulOptions } from '../gpu/kernels/matmul.ts';
import { Forward } from './forward.ts';
import { defaultKvDtype } from './kv-cache.ts';
import { DEFAULT_CHUNK_TOKENS, GPU_CHUNK_TOKENS, type MemoryLayout, type Residency, type WeightMode } from './layout.ts';
import { GpuWeights } from './weights.ts';

export interface GeneratorOptions {
  mode: WeightMode;
  /** KV cache positions; default min(max_position_embeddings, 2048). */
  contextLength?: number;
  /** Tokens per prefill chunk (default DEFAULT_CHUNK_TOKENS). */
  chunkTokens?: number;
  /** Cap on LM head tile rows (default: as large as the device allows); a multiple of 128. */
  maxHeadTileRows?: number;
  /** Matmul kernel choices (default: what suits the adapter). */
  matmul?: MatmulOptions;
  /** df11 mode: layers (and the head) kept resident in BF16, decoded once at load (default: none). */
  resident?: Residency;
  /** KV cache element type (default: defaultKvDtype, f16 on GPUs and f32 on CPU adapters). */
  kvCache?: KvDtype;
  /** df11 mode: one-token steps through the fused DF11 decode + GEMV (ForwardOptions.fusedDecode; default off). */
  fusedDecode?: boolean;
  /** Layers per command buffer submit (ForwardOptions.layersPerSubmit). */
  layersPerSubmit?: number;
  /** Load progress: each DF11 unit uploaded (units done, of all), then the shaders compiling. */
  onLoadStep?: (phase: 'upload' | 'compile', done: number, total: number, unit?: string) => void;
}

export class GpuTokenGenerator implements TokenGenerator {
  private pos = 0;

  constructor(
    private readonly weights: GpuWeights,
    private readonly forward: Forward,
  ) {}

  get spec(): ModelSpec {
    return this.forward.spec;
  }

  get contextLength(): number {
    return this.forward.kv.maxSeq;
  }

  /** Every buffer this generator holds, as planned (generator.memory() reports the same bytes, allocated). */
  get layout(): MemoryLayout {
    return this.weights.layout;
  }

  get position(): number {
    return this.pos;
  }

  async prefill(ids: ArrayLike<number>, signal?: AbortSignal): Promise<Float32Array> {
    if (ids.length === 0) throw new Df11Error('bad-request', 'prefill needs at least one token');
    if (this.pos + ids.length > this.contextLength) {
      throw new Df11Error('context-overflow', `${this.pos} cached + ${ids.length} new tokens exceed the context of ${this.contextLength}`);
    }
    const all = Uint32Array.from(ids);
    const chunk = this.forward.maxTokens;
    let logits: Float32Array | undefined;
    for (let start = 0; start < all.length; start += chunk) {
      if (signal?.aborted) throw new Df11Error('aborted', 'prefill aborted');
      const part = all.subarray(start, Math.min(all.length, start + chunk));
      logits = await this.forward.run(part, this.pos, start + part.length === all.length);
      this.pos += part.length;
    }
    await this.weights.checkDecodes();
    return logits!;
  }

  async decode(id: number, signal?: AbortSignal): Promise<Float32Array> {
    if (signal?.aborted) throw new Df11Error('aborted', 'decode aborted');
    if (this.pos + 1 > this.contextLength) throw new Df11Error('context-overflow', `the context of ${this.contextLength} positions is full`);
    const logits = await this.forward.run(Uint32Array.of(id), this.pos, true);
    this.pos += 1;
    return logits!;
  }

  reset(): void {
    this.pos = 0;
  }

  memory(): GeneratorMemory {
    const w = this.weights.memory();
    return {
      weightMode: this.weights.mode,
      weightBytes: w.weightBytes,
      bf16WeightBytes: w.bf16WeightBytes,
      transientBytes: w.transientBytes,
      kvCacheBytes: this.forward.kv.bytes,
      activationBytes: this.forward.activationBytes + w.embeddingRowsBytes,
      resident: { ...this.weights.layout.resident, totalLayers: this.spec.numLayers },
    };
  }

  dispose(): void {
    this.forward.destroy();
    this.weights.destroy();
  }
}

/** A generator for an opened model (weights on the GPU, buffers for the context allocated once). */
export async function createGenerator(gpu: Gpu, model: ModelWeights, options: GeneratorOptions): Promise<GpuTokenGenerator> {
  const contextLength = options.contextLength ?? Math.min(model.spec.maxPositionEmbeddings, 2048);
  if (!Number.isInteger(contextLength) || contextLength < 1) throw new Df11Error('bad-request', `context length ${contextLength} is not a positive integer`);
  const chunkTokens = options.chunkTokens ?? DEFAULT_CHUNK_TOKENS;
  const kvDtype = options.kvCache ?? defaultKvDtype(gpu);
  const onUnitUploaded = (done: number, total: number, unit: string): void => options.onLoadStep?.('upload', done, total, unit);
  const weights = await GpuWeights.load(gpu, model, {
    mode: options.mode,
    contextLength,
    chunkTokens,
    maxHeadTileRows: options.maxHeadTileRows,
    kvDtype,
    resident: options.resident,
    onUnitUploaded,
  });
  try {
    options.onLoadStep?.('compile', 0, 1);
    const ropePrecision = checkpointDtype(model.config) === 'bfloat16' ? 'bf16' : 'f32';
    return new GpuTokenGenerator(weights, await Forward.create(gpu, weights, { ropePrecision, matmul: options.matmul, fusedDecode: options.fusedDecode, layersPerSubmit: options.layersPerSubmit }));
  } catch (e) {
    weights.destroy();
    throw e;
  }
}

/**
 * DF11 on GPUs; BF16 on CPU adapters (SwiftShader), where decoding every layer for every token costs
 * about a minute per forward of a 15M-parameter model and there is no GPU memory to save. The logits are
 * the same bit for bit either way.
 */
export function defaultWeightMode(gpu: Gpu): WeightMode {
  return isCpuAdapter(gpu.adapterInfo) ? 'bf16' : 'df11';
}

/**
 * GPU_CHUNK_TOKENS on GPUs, where a prefill chunk of 512 tokens fills the GEMM with workgroups (1B shape on
 * the H200: 7,656 prefill tok/s against 2,291 with chunks of 64, bench/RESULTS.md); DEFAULT_CHUNK_TOKENS on
 * CPU adapters, where a chunk's activations only cost memory.
 */
export function defaultChunkTokens(gpu: Gpu): number {
  return isCpuAdapter(gpu.adapterInfo) ? DEFAULT_CHUNK_TOKENS : GPU_CHUNK_TOKENS;
}

/** The dtype the checkpoint was saved in (`dtype`, or `torch_dtype` in older configs; a multimodal config's text_config). */
function checkpointDtype(config: Record<string, unknown>): unknown {
  const text = config.text_config as Record<string, unknown> | undefined;
  return config.dtype ?? config.torch_dtype ?? text?.dtype ?? text?.torch_dtype;
}
