import type { Gpu } from '../gpu.ts';
import { BoundKernel, kernelPipeline, type KernelPipeline, type StorageBinding } from './kernel.ts';

/** RMSNorm of rows with an f32 weight, written or added to the output.  shaders/rmsnorm.wgsl */
export class RmsNormKernel {
  private constructor(private readonly gpu: Gpu, private readonly pipeline: KernelPipeline<'x' | 'weight' | 'out'>) {}

  static async create(gpu: Gpu): Promise<RmsNormKernel> {
    return new RmsNormKernel(gpu, await kernelPipeline(gpu, 'rmsnorm', ['x', 'weight', 'out']));
  }

  /** x: (rows, dim) f32; weight: (dim) f32; out: (rows, dim) f32 (a different buffer from x). */
  async bind(x: StorageBinding, weight: StorageBinding, out: StorageBinding): Promise<RmsNormCall> {
    return new RmsNormCall(await BoundKernel.create(this.gpu, this.pipeline, { x, weight, out }));
  }
}

export class RmsNormCall {
  constructor(private readonly kernel: BoundKernel) {}

  encode(pass: GPUComputePassEncoder, a: { rows: number; dim: number; eps: number; inOffset?: number; outOffset?: number; accumulate?: boolean }): void {
    this.kernel.encode(
      pass,
      { rows: a.rows, dim: a.dim, in_offset: a.inOffset ?? 0, out_offset: a.outOffset ?? 0, eps: a.eps, accumulate: a.accumulate ? 1 : 0 },
      [...this.kernel.grid(a.rows), 1],
    );
  }

  destroy(): void {
    this.kernel.destroy();
  }
}
