import type { Gpu } from '../gpu.ts';
import { BoundKernel, grid, kernelPipeline, MAX_GROUPS_PER_DIM, type KernelPipeline, type StorageBinding } from './kernel.ts';

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

const GEMV_GROUP = 256;
const GEMM_TILE = { tokens: 32, rows: 64 };

export interface MatmulOptions {
  gemvLanes?: 1 | 2 | 4 | 8 | 16 | 32;
  gemvMaxTokens?: number;
}

/**
 * out = [out +] x · Wᵀ [+ bias] with BF16 weights and f32 activations: GEMV (decode) or tiled GEMM
 * (prefill) picked by token count.  shaders/matmul_gemv.wgsl, shaders/matmul_gemm.wgsl
 */
export class MatmulKernel {
  private constructor(
    private readonly gpu: Gpu,
    private readonly gemvVec: KernelPipeline,
    private readonly gemvScalar: KernelPipeline,
    private readonly gemm: KernelPipeline,
    /** Threads reducing one row in the GEMV. */
    readonly gemvLanes: number,
    /** Calls with more tokens than this use the tiled GEMM. */
    readonly gemvMaxTokens: number,
  ) {}

  /**
   * Defaults suit the adapter: on GPUs 32 lanes per GEMV row and GEMM above 4 tokens; on CPU adapters
   * (SwiftShader), where workgroup barriers are costly, a row per thread and GEMV for any token count.
   */
  static async create(gpu: Gpu, options: MatmulOptions = {}): Promise<MatmulKernel> {
    const cpu = isCpuAdapter(gpu.adapterInfo);
    const lanes = options.gemvLanes ?? (cpu ? 1 : 32);
    const gemvMaxTokens = options.gemvMaxTokens ?? (cpu ? Infinity : 4);
    const [gemvVec, gemvScalar, gemm] = await Promise.all([
      kernelPipeline(gpu, 'matmul_gemv', { VEC: 1, LANES: lanes }),
      kernelPipeline(gpu, 'matmul_gemv', { VEC: 0, LANES: lanes }),
      kernelPipeline(gpu, 'matmul_gemm'),
    ]);
    return new MatmulKernel(gpu, gemvVec, gemvScalar, gemm, lanes, gemvMaxTokens);
  }

  /**
   * x: (tokens, x_stride) f32; weight: the matrix; bias: (rows) f32 or undefined; out: (tokens, out_stride) f32.
   * Every binding must be a 16-byte multiple long (vec4 arrays).
   */
  async bind(x: StorageBinding, weight: MatrixView, bias: StorageBinding | undefined, out: StorageBinding): Promise<MatmulCall> {
    const storage = [x, weight.binding, bias ?? x, out];
    const [vec, scalar, tiled] = await Promise.all(
      [this.gemvVec, this.gemvScalar, this.gemm].map((p) => BoundKernel.create(this.gpu, p, storage)),
    );
    return new MatmulCall(weight, bias !== undefined, GEMV_GROUP / this.gemvLanes, this.gemvMaxTokens, vec!, scalar!, tiled!);
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
    private readonly gemvRowsPerGroup: number,
    private readonly gemvMaxTokens: number,
    private readonly gemvVec: BoundKernel,
    private readonly gemvScalar: BoundKernel,
    private readonly gemm: BoundKernel,
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
    if (a.tokens <= this.gemvMaxTokens) {
      if (a.tokens > MAX_GROUPS_PER_DIM) throw new RangeError(`matmul: ${a.tokens} tokens is too many for one dispatch`);
      const aligned = cols % 8 === 0 && offset % 8 === 0 && params.x_offset % 4 === 0 && params.x_stride % 4 === 0;
      const [gx, gy] = grid(Math.ceil(rows / this.gemvRowsPerGroup));
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

/** SwiftShader and other CPU implementations of WebGPU. */
export function isCpuAdapter(info: GPUAdapterInfo): boolean {
  return /swiftshader|llvmpipe|cpu/i.test(`${info.vendor} ${info.architecture} ${info.device} ${info.description}`);
}
