import { Df11Error } from '../../errors.ts';
import type { Gpu } from '../gpu.ts';
import { DELTA_RULE } from '../shader-constants.ts';
import { BoundKernel, kernelPipeline, type KernelPipeline, type StorageBinding } from './kernel.ts';

/** Storage buffers of shaders/delta_rule.wgsl, bound by these names. */
const BUFFERS = ['conv', 'proj', 'a_log', 'dt_bias', 'norm_w', 'state', 'out'] as const;

/**
 * The gated delta rule of a Gated DeltaNet layer over its fixed-size recurrent state, token by token, then
 * the gated RMSNorm of its output.  shaders/delta_rule.wgsl
 */
export class DeltaRuleKernel {
  private constructor(private readonly gpu: Gpu, private readonly pipeline: KernelPipeline<(typeof BUFFERS)[number]>) {}

  static async create(gpu: Gpu): Promise<DeltaRuleKernel> {
    return new DeltaRuleKernel(gpu, await kernelPipeline(gpu, 'delta_rule', BUFFERS));
  }

  /**
   * conv: (tokens, 2 key_heads key_dim + value_heads value_dim) q | k | v after the conv; proj: (tokens,
   * projTokenStride) holding z, b, a; aLog, dtBias: (value_heads); normWeight: (value_dim);
   * state: (value_heads, key_dim, value_dim), read and rewritten; out: (tokens, value_heads value_dim).
   */
  async bind(
    conv: StorageBinding,
    proj: StorageBinding,
    aLog: StorageBinding,
    dtBias: StorageBinding,
    normWeight: StorageBinding,
    state: StorageBinding,
    out: StorageBinding,
  ): Promise<DeltaRuleCall> {
    return new DeltaRuleCall(await BoundKernel.create(this.gpu, this.pipeline, { conv, proj, a_log: aLog, dt_bias: dtBias, norm_w: normWeight, state, out }));
  }
}

export interface DeltaRuleArgs {
  tokens: number;
  keyHeads: number;
  valueHeads: number;
  keyHeadDim: number;
  valueHeadDim: number;
  projTokenStride: number;
  /** Where z, b and a start in each token's proj row. */
  zOffset: number;
  bOffset: number;
  aOffset: number;
  /** Position 0: the state starts at zero. */
  fresh: boolean;
  /** The gated RMSNorm's epsilon. */
  eps: number;
}

export class DeltaRuleCall {
  constructor(private readonly kernel: BoundKernel) {}

  encode(pass: GPUComputePassEncoder, a: DeltaRuleArgs): void {
    if (a.keyHeadDim > DELTA_RULE.MAX_KEY_DIM) {
      throw new Df11Error('unsupported-architecture', `linear_key_head_dim ${a.keyHeadDim} is not supported (at most ${DELTA_RULE.MAX_KEY_DIM})`);
    }
    if (a.valueHeads % a.keyHeads !== 0) throw new Df11Error('bad-request', `delta rule: ${a.valueHeads} value heads are not a multiple of ${a.keyHeads} key heads`);
    this.kernel.encode(
      pass,
      {
        tokens: a.tokens,
        key_heads: a.keyHeads,
        value_heads: a.valueHeads,
        key_dim: a.keyHeadDim,
        value_dim: a.valueHeadDim,
        proj_tok_stride: a.projTokenStride,
        z_offset: a.zOffset,
        b_offset: a.bOffset,
        a_offset: a.aOffset,
        fresh: a.fresh ? 1 : 0,
        eps: a.eps,
      },
      [a.valueHeads, 1, 1],
    );
  }

  destroy(): void {
    this.kernel.destroy();
  }
}
