import { Df11Error } from '../../errors.ts';
import type { Gpu } from '../gpu.ts';
import { ROPE } from '../shader-constants.ts';
import { BoundKernel, kernelPipeline, type KernelPipeline, type StorageBinding } from './kernel.ts';
import type { KvDtype } from './kv-dtype.ts';

/** Largest head_dim the rope and attention kernels hold in workgroup memory. */
export const MAX_HEAD_DIM = ROPE.MAX_HEAD_DIM;

/** Where each head vector goes: dst[h * headStride + slot * tokenStride + d]. */
export interface HeadLayout {
  headStride: number;
  tokenStride: number;
  /** true: token t goes to slot pos0 + t (KV cache); false: slot t. */
  atPosition: boolean;
}

/**
 * Per-head [RMSNorm] → [RoPE] → scatter; covers Q (rotate into a (tokens, heads, head_dim) buffer),
 * K (rotate into the cache) and V (plain copy into the cache).  shaders/rope.wgsl
 */
export class RopeKernel {
  private constructor(private readonly gpu: Gpu, private readonly pipeline: KernelPipeline<'src' | 'cos_sin' | 'norm_w' | 'dst'>, readonly dstDtype: KvDtype) {}

  /** dstDtype: how dst stores the vectors ('f16': packed halves, for an f16 KV cache; needs an even head offset). */
  static async create(gpu: Gpu, dstDtype: KvDtype = 'f32'): Promise<RopeKernel> {
    return new RopeKernel(gpu, await kernelPipeline(gpu, 'rope', ['src', 'cos_sin', 'norm_w', 'dst'], { DST_F16: dstDtype === 'f16' ? 1 : 0 }), dstDtype);
  }

  /**
   * src: (n_tokens, src_tok_stride) f32; cosSin: (max_seq, rotary_dim/2, 2) f32 (see model/rope-table.ts);
   * normWeight: (head_dim) f32 (any buffer when unused); dst: per `HeadLayout`.
   */
  async bind(src: StorageBinding, cosSin: StorageBinding, normWeight: StorageBinding, dst: StorageBinding): Promise<RopeCall> {
    return new RopeCall(await BoundKernel.create(this.gpu, this.pipeline, { src, cos_sin: cosSin, norm_w: normWeight, dst }), this.dstDtype);
  }
}

export interface RopeArgs {
  tokens: number;
  heads: number;
  headDim: number;
  pos0: number;
  srcOffset: number;
  srcTokenStride: number;
  /** Elements between the heads of a token in src (default headDim: contiguous; 2 headDim: a gated q_proj's query | gate). */
  srcHeadStride?: number;
  dst: HeadLayout;
  rotate: boolean;
  /** Leading dims that rotate (partial rotary; default headDim). The cos/sin table has rotaryDim / 2 columns. */
  rotaryDim?: number;
  /** RMSNorm epsilon when the head is normalised first (qwen3 q_norm / k_norm). */
  normEps?: number;
}

export class RopeCall {
  constructor(private readonly kernel: BoundKernel, private readonly dstDtype: KvDtype) {}

  encode(pass: GPUComputePassEncoder, a: RopeArgs): void {
    if (this.dstDtype === 'f16' && (a.dst.headStride % 2 !== 0 || a.dst.tokenStride % 2 !== 0)) {
      throw new Df11Error('bad-request', 'rope: packed f16 output needs even strides');
    }
    if (a.headDim % 2 !== 0 || a.headDim > MAX_HEAD_DIM) {
      throw new Df11Error('unsupported-architecture', `head_dim ${a.headDim} must be even and at most ${MAX_HEAD_DIM}`);
    }
    const rotaryDim = a.rotaryDim ?? a.headDim;
    if (rotaryDim % 2 !== 0 || rotaryDim < 2 || rotaryDim > a.headDim) throw new Df11Error('unsupported-architecture', `rope: rotary dims ${rotaryDim} must be even and within head_dim ${a.headDim}`);
    this.kernel.encode(
      pass,
      {
        n_heads: a.heads,
        head_dim: a.headDim,
        pos0: a.pos0,
        src_offset: a.srcOffset,
        src_tok_stride: a.srcTokenStride,
        src_head_stride: a.srcHeadStride ?? a.headDim,
        dst_head_stride: a.dst.headStride,
        dst_tok_stride: a.dst.tokenStride,
        dst_at_pos: a.dst.atPosition ? 1 : 0,
        rotate: a.rotate ? 1 : 0,
        rotary_dim: rotaryDim,
        norm: a.normEps === undefined ? 0 : 1,
        eps: a.normEps ?? 0,
      },
      [a.heads, a.tokens, 1],
    );
  }

  destroy(): void {
    this.kernel.destroy();
  }
}
