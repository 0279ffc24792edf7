import type { Gpu } from '../gpu.ts';
import { EMBED } from '../shader-constants.ts';
import { BoundKernel, kernelPipeline, type KernelPipeline, type StorageBinding } from './kernel.ts';

/** BF16 embedding rows (already gathered per token) → f32 activations.  shaders/embed.wgsl */
export class EmbedKernel {
  private constructor(private readonly gpu: Gpu, private readonly pipeline: KernelPipeline<'rows' | 'out'>) {}

  static async create(gpu: Gpu): Promise<EmbedKernel> {
    return new EmbedKernel(gpu, await kernelPipeline(gpu, 'embed', ['rows', 'out']));
  }

  /** rows: (n_tokens, dim) BF16 packed; out: (n_tokens, dim) f32. */
  async bind(rows: StorageBinding, out: StorageBinding): Promise<EmbedCall> {
    return new EmbedCall(await BoundKernel.create(this.gpu, this.pipeline, { rows, out }));
  }
}

export class EmbedCall {
  constructor(private readonly kernel: BoundKernel) {}

  encode(pass: GPUComputePassEncoder, a: { tokens: number; dim: number; rowsOffset: number; scale?: number }): void {
    const count = a.tokens * a.dim;
    this.kernel.encode(pass, { count, rows_offset: a.rowsOffset, scale: a.scale ?? 1 }, [...this.kernel.grid(Math.ceil(count / EMBED.WG)), 1]);
  }

  destroy(): void {
    this.kernel.destroy();
  }
}
