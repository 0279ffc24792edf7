import { Df11Error } from '../../errors.ts';
import type { Gpu } from '../gpu.ts';
import { ROPE } from '../shader-constants.ts';
import { BoundKernel, kernelPipeline, type KernelPipeline, type StorageBinding } from './kernel.ts';
import type { KvDtype } from './kv-dtype.ts';

/** Largest head_dim the rope and attention kernels hold in workgroup memory. */
export const MAX_HEAD_DIM = ROPE.MAX_HEAD_DIM;

type RopeBuffer = 'src' | 'cos_sin' | 'q_norm_w' | 'k_norm_w' | 'q_out' | 'k_cache' | 'v_cache';

/** The buffers of one attention layer's heads step (see RopeKernel.bind). */
export interface RopeBuffers {
  src: StorageBinding; // (n_tokens, src_tok_stride) f32: the q | k | v projection output
  cosSin: StorageBinding; // (max_seq, rotary_dim / 2, 2) f32 (see model/rope-table.ts)
  qNorm: StorageBinding; // (head_dim) f32 q_norm weight (any buffer when unused)
  kNorm: StorageBinding; // (head_dim) f32 k_norm weight (any buffer when unused)
  q: StorageBinding; // (n_tokens, n_q, head_dim) f32
  kCache: StorageBinding; // (n_kv, max_seq, head_dim) in the cache dtype
  vCache: StorageBinding; // (n_kv, max_seq, head_dim) in the cache dtype
}

/**
 * An attention layer's q | k | v heads in one dispatch: [q_norm / k_norm RMSNorm] → [RoPE] on queries and
 * keys, queries to their f32 buffer, keys and values into the KV cache at their positions.  shaders/rope.wgsl
 */
export class RopeKernel {
  private constructor(private readonly gpu: Gpu, private readonly pipeline: KernelPipeline<RopeBuffer>, readonly kvDtype: KvDtype) {}

  /** kvDtype: how the caches store the vectors ('f16': packed halves). */
  static async create(gpu: Gpu, kvDtype: KvDtype = 'f32'): Promise<RopeKernel> {
    const names: RopeBuffer[] = ['src', 'cos_sin', 'q_norm_w', 'k_norm_w', 'q_out', 'k_cache', 'v_cache'];
    return new RopeKernel(gpu, await kernelPipeline(gpu, 'rope', names, { KV_F16: kvDtype === 'f16' ? 1 : 0 }), kvDtype);
  }

  async bind(b: RopeBuffers): Promise<RopeCall> {
    const storage = { src: b.src, cos_sin: b.cosSin, q_norm_w: b.qNorm, k_norm_w: b.kNorm, q_out: b.q, k_cache: b.kCache, v_cache: b.vCache };
    return new RopeCall(await BoundKernel.create(this.gpu, this.pipeline, storage));
  }
}

export interface RopeArgs {
  tokens: number;
  qHeads: number;
  kvHeads: number;
  headDim: number;
  pos0: number;
  /** Cache slots per KV head. */
  maxSeq: number;
  srcTokenStride: number;
  /** Elements between query heads in src (default headDim; 2 headDim: a gated q_proj's query | gate). */
  qHeadStride?: number;
  /** Elements from a token's first query element to its first key and value elements. */
  kOffset: number;
  vOffset: number;
  rotate: boolean;
  /** Leading dims that rotate (partial rotary; default headDim). The cos/sin table has rotaryDim / 2 columns. */
  rotaryDim?: number;
  /** RMSNorm epsilon when query and key heads are normalised first (qwen3 q_norm / k_norm). */
  normEps?: number;
}

export class RopeCall {
  constructor(private readonly kernel: BoundKernel) {}

  encode(pass: GPUComputePassEncoder, a: RopeArgs): void {
    if (a.headDim % 2 !== 0 || a.headDim > MAX_HEAD_DIM) {
      throw new Df11Error('unsupported-architecture', `head_dim ${a.headDim} must be even and at most ${MAX_HEAD_DIM}`);
    }
    const rotaryDim = a.rotaryDim ?? a.headDim;
    if (rotaryDim % 2 !== 0 || rotaryDim < 2 || rotaryDim > a.headDim) throw new Df11Error('unsupported-architecture', `rope: rotary dims ${rotaryDim} must be even and within head_dim ${a.headDim}`);
    this.kernel.encode(
      pass,
      {
        n_q_heads: a.qHeads,
        n_kv_heads: a.kvHeads,
        head_dim: a.headDim,
        pos0: a.pos0,
        src_tok_stride: a.srcTokenStride,
        q_head_stride: a.qHeadStride ?? a.headDim,
        k_offset: a.kOffset,
        v_offset: a.vOffset,
        max_seq: a.maxSeq,
        rotate: a.rotate ? 1 : 0,
        rotary_dim: rotaryDim,
        norm: a.normEps === undefined ? 0 : 1,
        eps: a.normEps ?? 0,
      },
      [a.qHeads + 2 * a.kvHeads, a.tokens, 1],
    );
  }

  destroy(): void {
    this.kernel.destroy();
  }
}
