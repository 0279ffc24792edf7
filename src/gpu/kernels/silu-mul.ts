import type { Gpu } from '../gpu.ts';
import { BoundKernel, grid, kernelPipeline, type KernelPipeline, type StorageBinding } from './kernel.ts';

/** gate = silu(gate) * up, in place.  shaders/silu_mul.wgsl */
export class SiluMulKernel {
  private constructor(private readonly gpu: Gpu, private readonly pipeline: KernelPipeline) {}

  static async create(gpu: Gpu): Promise<SiluMulKernel> {
    return new SiluMulKernel(gpu, await kernelPipeline(gpu, 'silu_mul'));
  }

  /** gate, up: (n_tokens, intermediate) f32. */
  async bind(gate: StorageBinding, up: StorageBinding): Promise<SiluMulCall> {
    return new SiluMulCall(await BoundKernel.create(this.gpu, this.pipeline, [gate, up]));
  }
}

export class SiluMulCall {
  constructor(private readonly kernel: BoundKernel) {}

  encode(pass: GPUComputePassEncoder, count: number): void {
    this.kernel.encode(pass, { count }, [...grid(Math.ceil(count / 256)), 1]);
  }

  destroy(): void {
    this.kernel.destroy();
  }
}
