import { Df11Error } from '../../errors.ts';
import type { Gpu } from '../gpu.ts';
import { CONV1D } from '../shader-constants.ts';
import { BoundKernel, kernelPipeline, type KernelPipeline, type StorageBinding } from './kernel.ts';

type Conv1dBuffer = 'src' | 'weight' | 'state' | 'out';

/** Causal depthwise conv1d with a rolling state, then SiLU (a Gated DeltaNet's q | k | v).  shaders/conv1d.wgsl */
export class Conv1dKernel {
  private constructor(private readonly gpu: Gpu, private readonly pipeline: KernelPipeline<Conv1dBuffer>) {}

  static async create(gpu: Gpu): Promise<Conv1dKernel> {
    return new Conv1dKernel(gpu, await kernelPipeline(gpu, 'conv1d', ['src', 'weight', 'state', 'out']));
  }

  /**
   * src: (tokens, srcTokenStride) f32, channels from 0; weight: (channels, kernel) f32;
   * state: (kernel - 1, channels) f32, read and rewritten; out: (tokens, channels) f32.
   */
  async bind(src: StorageBinding, weight: StorageBinding, state: StorageBinding, out: StorageBinding): Promise<Conv1dCall> {
    return new Conv1dCall(await BoundKernel.create(this.gpu, this.pipeline, { src, weight, state, out }));
  }
}

export interface Conv1dArgs {
  tokens: number;
  channels: number;
  kernel: number;
  srcTokenStride: number;
  /** No earlier tokens (position 0): the state reads as zeros. */
  fresh: boolean;
}

export class Conv1dCall {
  constructor(private readonly kernel: BoundKernel) {}

  encode(pass: GPUComputePassEncoder, a: Conv1dArgs): void {
    if (a.tokens < 1 || a.kernel < 1) throw new Df11Error('bad-request', 'conv1d: needs at least one token and a kernel of at least 1');
    this.kernel.encode(
      pass,
      { tokens: a.tokens, channels: a.channels, kernel: a.kernel, src_tok_stride: a.srcTokenStride, fresh: a.fresh ? 1 : 0 },
      [...this.kernel.grid(Math.ceil(a.channels / CONV1D.WG)), 1],
    );
  }

  destroy(): void {
    this.kernel.destroy();
  }
}
