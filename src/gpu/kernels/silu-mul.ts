import type { Activation } from '../../format/model-spec.ts';
import type { Gpu } from '../gpu.ts';
import { BoundKernel, grid, kernelPipeline, type KernelPipeline, type StorageBinding } from './kernel.ts';

/** Activation codes of shaders/silu_mul.wgsl (ACT_SILU, ACT_GELU_TANH). */
const ACT: Record<Activation, number> = { silu: 0, gelu_tanh: 1 };

/** out = act(gate) * up from the fused gate|up projection (act: silu or tanh-approximated GELU).  shaders/silu_mul.wgsl */
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

  encode(pass: GPUComputePassEncoder, a: { tokens: number; dim: number; activation?: Activation }): void {
    const count = a.tokens * a.dim;
    this.kernel.encode(pass, { count, dim: a.dim, act: ACT[a.activation ?? 'silu'] }, [...grid(Math.ceil(count / 256)), 1]);
  }

  destroy(): void {
    this.kernel.destroy();
  }
}
