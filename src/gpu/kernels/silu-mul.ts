import type { Gpu } from '../gpu.ts';
import { BoundKernel, grid, UniformLayout, type StorageBinding } from './kernel.ts';

export const SILU_MUL_PARAMS = new UniformLayout({ count: 'u32' });

/** gate = silu(gate) * up, in place.  shaders/silu_mul.wgsl */
export class SiluMulKernel {
  private constructor(private readonly gpu: Gpu, private readonly pipeline: GPUComputePipeline) {}

  static async create(gpu: Gpu): Promise<SiluMulKernel> {
    return new SiluMulKernel(gpu, await gpu.computePipeline('silu_mul'));
  }

  /** gate, up: (n_tokens, intermediate) f32. */
  async bind(gate: StorageBinding, up: StorageBinding): Promise<SiluMulCall> {
    return new SiluMulCall(await BoundKernel.create(this.gpu, this.pipeline, SILU_MUL_PARAMS, [gate, up]));
  }
}

export class SiluMulCall {
  constructor(private readonly kernel: BoundKernel<'count'>) {}

  encode(pass: GPUComputePassEncoder, count: number): void {
    this.kernel.encode(pass, { count }, [...grid(Math.ceil(count / 256)), 1]);
  }

  destroy(): void {
    this.kernel.destroy();
  }
}
