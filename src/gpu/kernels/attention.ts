import { Df11Error } from '../../errors.ts';
import type { Gpu } from '../gpu.ts';
import { BoundKernel, kernelPipeline, MAX_GROUPS_PER_DIM, type KernelPipeline, type StorageBinding } from './kernel.ts';
import { MAX_HEAD_DIM } from './rope.ts';

/** Causal GQA attention of new query tokens over one layer's KV cache, optionally in a sliding window.  shaders/attention.wgsl */
export class AttentionKernel {
  private constructor(private readonly gpu: Gpu, private readonly pipeline: KernelPipeline) {}

  static async create(gpu: Gpu): Promise<AttentionKernel> {
    return new AttentionKernel(gpu, await kernelPipeline(gpu, 'attention'));
  }

  /** q: (n_tokens, n_heads, head_dim); kCache, vCache: (n_kv_heads, max_seq, head_dim); out: (n_tokens, n_heads * head_dim). */
  async bind(q: StorageBinding, kCache: StorageBinding, vCache: StorageBinding, out: StorageBinding): Promise<AttentionCall> {
    return new AttentionCall(await BoundKernel.create(this.gpu, this.pipeline, [q, kCache, vCache, out]));
  }
}

export class AttentionCall {
  constructor(private readonly kernel: BoundKernel) {}

  encode(
    pass: GPUComputePassEncoder,
    a: {
      tokens: number;
      heads: number;
      kvHeads: number;
      headDim: number;
      pos0: number;
      maxSeq: number;
      /** Softmax scale of q·k (default 1 / sqrt(headDim)). */
      scale?: number;
      /** Sliding window: the query at position p sees keys max(0, p − window + 1)..p; 0 (default) = full causal. */
      window?: number;
    },
  ): void {
    if (a.headDim > MAX_HEAD_DIM) throw new Df11Error('unsupported-architecture', `head_dim ${a.headDim} exceeds ${MAX_HEAD_DIM}`);
    if (a.heads % a.kvHeads !== 0) throw new RangeError('attention: heads must be a multiple of kv heads');
    if (a.pos0 + a.tokens > a.maxSeq) throw new Df11Error('context-overflow', `attention past the cache (${a.pos0 + a.tokens} > ${a.maxSeq})`);
    if (a.heads > MAX_GROUPS_PER_DIM || a.tokens > MAX_GROUPS_PER_DIM) throw new RangeError('attention: too many heads or tokens for one dispatch');
    this.kernel.encode(
      pass,
      { n_heads: a.heads, n_kv_heads: a.kvHeads, head_dim: a.headDim, pos0: a.pos0, max_seq: a.maxSeq, scale: a.scale ?? 1 / Math.sqrt(a.headDim), window: a.window ?? 0 },
      [a.heads, a.tokens, 1],
    );
  }

  destroy(): void {
    this.kernel.destroy();
  }
}
