import type { Gpu } from '../gpu.ts';
import { BoundKernel, grid, kernelPipeline, type KernelPipeline, type StorageBinding } from './kernel.ts';

/** out = silu(gate) * up from the fused gate|up projection.  shaders/silu_mul.wgsl */
export class SiluMulKernel {
  private constructor(private readonly gpu: Gpu, private readonly pipeline: KernelPipeline) {}

  static async create(gpu: Gpu): Promise<SiluMulKernel> {
    return new SiluMulKernel(gpu, await kernelPipeline(gpu, 'silu_mul'));
  }

  /** gateUp: (n_tokens, 2 * intermediate) f32, gate then up per token; out: (n_tokens, intermediate) f32. */
  async bind(gateUp: StorageBinding, out: StorageBinding): Promise<SiluMulCall> {
    return new SiluMulCall(await BoundKernel.create(this.gpu, this.pipeline, [gateUp, out]));
  }
}

export class SiluMulCall {
  constructor(private readonly kernel: BoundKernel) {}

  encode(pass: GPUComputePassEncoder, a: { tokens: number; dim: number }): void {
    const count = a.tokens * a.dim;
    this.kernel.encode(pass, { count, dim: a.dim }, [...grid(Math.ceil(count / 256)), 1]);
  }

  destroy(): void {
    this.kernel.destroy();
  }
}
