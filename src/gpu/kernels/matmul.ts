import type { Gpu } from '../gpu.ts';
import { BoundKernel, grid, MAX_GROUPS_PER_DIM, UniformLayout, type StorageBinding } from './kernel.ts';

export const MATMUL_PARAMS = new UniformLayout({
  rows: 'u32',
  cols: 'u32',
  tokens: 'u32',
  w_offset: 'u32',
  x_offset: 'u32',
  x_stride: 'u32',
  out_offset: 'u32',
  out_stride: 'u32',
  bias: 'u32',
  accumulate: 'u32',
});
type F = (typeof MATMUL_PARAMS.names)[number];

/**
 * A BF16 matrix (PyTorch Linear layout: rows = out features, cols = in features) somewhere in a GPU
 * buffer: `binding` is what gets bound (256-byte aligned, at most maxStorageBufferBindingSize), and the
 * matrix starts at element `offset` of that binding.
 */
export interface MatrixView {
  binding: StorageBinding;
  offset: number;
  rows: number;
  cols: number;
}

/** Above this many tokens the tiled GEMM beats one GEMV pass per token. */
const GEMV_MAX_TOKENS = 4;
const GEMV_ROWS_PER_GROUP = 8;
const GEMM_TILE = { tokens: 32, rows: 64 };

/**
 * out = [out +] x · Wᵀ [+ bias] with BF16 weights and f32 activations: GEMV (decode) or tiled GEMM
 * (prefill) picked by token count.  shaders/matmul_gemv.wgsl, shaders/matmul_gemm.wgsl
 */
export class MatmulKernel {
  private constructor(
    private readonly gpu: Gpu,
    private readonly gemvVec: GPUComputePipeline,
    private readonly gemvScalar: GPUComputePipeline,
    private readonly gemm: GPUComputePipeline,
  ) {}

  static async create(gpu: Gpu): Promise<MatmulKernel> {
    const [gemvVec, gemvScalar, gemm] = await Promise.all([
      gpu.computePipeline('matmul_gemv', { VEC: 1 }),
      gpu.computePipeline('matmul_gemv', { VEC: 0 }),
      gpu.computePipeline('matmul_gemm'),
    ]);
    return new MatmulKernel(gpu, gemvVec, gemvScalar, gemm);
  }

  /**
   * x: (tokens, x_stride) f32; weight: the matrix; bias: (rows) f32 or undefined; out: (tokens, out_stride) f32.
   * Every binding must be a 16-byte multiple long (vec4 arrays).
   */
  async bind(x: StorageBinding, weight: MatrixView, bias: StorageBinding | undefined, out: StorageBinding): Promise<MatmulCall> {
    const storage = [x, weight.binding, bias ?? x, out];
    const [vec, scalar, tiled] = await Promise.all(
      [this.gemvVec, this.gemvScalar, this.gemm].map((p) => BoundKernel.create(this.gpu, p, MATMUL_PARAMS, storage)),
    );
    return new MatmulCall(weight, bias !== undefined, vec!, scalar!, tiled!);
  }
}

export interface MatmulArgs {
  tokens: number;
  /** Element of token 0 in x, and the distance between tokens (default: weight cols). */
  xOffset?: number;
  xStride?: number;
  /** Element of (token 0, row 0) in out, and the distance between tokens (default: weight rows). */
  outOffset?: number;
  outStride?: number;
  /** Add to out instead of overwriting it (residual connection). */
  accumulate?: boolean;
}

export class MatmulCall {
  constructor(
    private readonly weight: MatrixView,
    private readonly hasBias: boolean,
    private readonly gemvVec: BoundKernel<F>,
    private readonly gemvScalar: BoundKernel<F>,
    private readonly gemm: BoundKernel<F>,
  ) {}

  encode(pass: GPUComputePassEncoder, a: MatmulArgs): void {
    const { rows, cols, offset } = this.weight;
    const params = {
      rows,
      cols,
      tokens: a.tokens,
      w_offset: offset,
      x_offset: a.xOffset ?? 0,
      x_stride: a.xStride ?? cols,
      out_offset: a.outOffset ?? 0,
      out_stride: a.outStride ?? rows,
      bias: this.hasBias ? 1 : 0,
      accumulate: a.accumulate ? 1 : 0,
    };
    if (a.tokens <= GEMV_MAX_TOKENS) {
      const aligned = cols % 8 === 0 && offset % 8 === 0 && params.x_offset % 4 === 0 && params.x_stride % 4 === 0;
      const [gx, gy] = grid(Math.ceil(rows / GEMV_ROWS_PER_GROUP));
      (aligned ? this.gemvVec : this.gemvScalar).encode(pass, params, [gx, gy, a.tokens]);
    } else {
      const gx = Math.ceil(rows / GEMM_TILE.rows);
      const gy = Math.ceil(a.tokens / GEMM_TILE.tokens);
      if (gx > MAX_GROUPS_PER_DIM || gy > MAX_GROUPS_PER_DIM) throw new RangeError(`matmul: ${rows} rows x ${a.tokens} tokens is too large for one dispatch`);
      this.gemm.encode(pass, params, [gx, gy, 1]);
    }
  }

  destroy(): void {
    for (const k of [this.gemvVec, this.gemvScalar, this.gemm]) k.destroy();
  }
}
