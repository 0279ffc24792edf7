import type { Gpu } from '../gpu.ts';
import { OUTPUT_GATE } from '../shader-constants.ts';
import { BoundKernel, kernelPipeline, type KernelPipeline, type StorageBinding } from './kernel.ts';

/** Attention output gate: out *= sigmoid(gate), the gate read per head from the q_proj output.  shaders/output_gate.wgsl */
export class OutputGateKernel {
  private constructor(private readonly gpu: Gpu, private readonly pipeline: KernelPipeline<'src' | 'out'>) {}

  static async create(gpu: Gpu): Promise<OutputGateKernel> {
    return new OutputGateKernel(gpu, await kernelPipeline(gpu, 'output_gate', ['src', 'out']));
  }

  /** src: holds the gates (see OutputGateArgs); out: (tokens, heads head_dim) f32, gated in place. */
  async bind(src: StorageBinding, out: StorageBinding): Promise<OutputGateCall> {
    return new OutputGateCall(await BoundKernel.create(this.gpu, this.pipeline, { src, out }));
  }
}

export interface OutputGateArgs {
  tokens: number;
  heads: number;
  headDim: number;
  /** gate[t, h, d] = src[gateOffset + t * gateTokenStride + h * gateHeadStride + d] */
  gateOffset: number;
  gateTokenStride: number;
  gateHeadStride: number;
}

export class OutputGateCall {
  constructor(private readonly kernel: BoundKernel) {}

  encode(pass: GPUComputePassEncoder, a: OutputGateArgs): void {
    const count = a.tokens * a.heads * a.headDim;
    this.kernel.encode(
      pass,
      { count, heads: a.heads, head_dim: a.headDim, gate_offset: a.gateOffset, gate_tok_stride: a.gateTokenStride, gate_head_stride: a.gateHeadStride },
      [...this.kernel.grid(Math.ceil(count / OUTPUT_GATE.WG)), 1],
    );
  }

  destroy(): void {
    this.kernel.destroy();
  }
}
