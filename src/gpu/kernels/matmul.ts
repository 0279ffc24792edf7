import { Df11Error } from '../../errors.ts';
import { isCpuAdapter, type Gpu } from '../gpu.ts';
import { ACTIVATION, GEMM, GEMV } from '../shader-constants.ts';
import { BoundKernel, kernelPipeline, type KernelPipeline, type Params, type StorageBinding } from './kernel.ts';

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

/**
 * What the matmul applies to its input on the fly. 'none': x as is. 'silu' / 'gelu_tanh': x holds a gated
 * MLP's gate|up output per token (gate in columns 0..cols-1, up in cols..2 cols-1) and the input is
 * act(gate) * up, so the down projection needs no separate activation pass.
 */
export type Activation = 'none' | 'silu' | 'gelu_tanh';

/** Values of the ACT override in shaders/activation.wgsl. */
export const ACTIVATION_CODE: Readonly<Record<Activation, number>> = { none: ACTIVATION.ACT_NONE, silu: ACTIVATION.ACT_SILU, gelu_tanh: ACTIVATION.ACT_GELU_TANH };

/**
 * How the GEMV (shaders/matmul_gemv_body.wgsl) splits work: workgroups of `threads` invocations, in row
 * groups of `lanes` invocations that share `rows` consecutive rows, reduced in workgroup memory or (with
 * `subgroups`) with subgroupAdd. The per-row sum order depends on threads, lanes and subgroups (not rows):
 * pick one variant per adapter, never per weight mode, so DF11 and BF16 stay bit-identical.
 */
export interface GemvVariant {
  threads: number; // power of two, <= 256
  lanes: number; // power of two dividing threads
  rows: number; // 1..MAX_GEMV_ROWS
  subgroups: boolean; // needs the device's `subgroups` feature and lanes == threads
}

export interface MatmulOptions {
  gemv?: GemvVariant;
  /** Calls with more tokens than this use the tiled GEMM. */
  gemvMaxTokens?: number;
  /** Rows per invocation of the GEMM (shaders/matmul_gemm.wgsl TR): 4 gives 64-row tiles, 8 gives 128. */
  gemmRowsPerThread?: 4 | 8;
}

/** MAX_ROWS in shaders/matmul_gemv_body.wgsl. */
export const MAX_GEMV_ROWS = GEMV.MAX_ROWS;
/** Tokens per GEMM tile (BT in shaders/matmul_gemm.wgsl); rows per tile are 16 * gemmRowsPerThread. */
const GEMM_TILE_TOKENS = GEMM.BT;

/**
 * Defaults per adapter (`kind` defaults to what the adapter is). GPUs: the whole workgroup on 4 rows,
 * subgroup reductions where the device has them, GEMM above 4 tokens. CPU adapters (SwiftShader), where
 * workgroup barriers are costly: a row per invocation and GEMV for any token count.
 */
export function defaultMatmulOptions(gpu: Gpu, kind: 'gpu' | 'cpu' = isCpuAdapter(gpu.adapterInfo) ? 'cpu' : 'gpu'): Required<MatmulOptions> {
  if (kind === 'cpu') {
    return { gemv: { threads: 256, lanes: 1, rows: 1, subgroups: false }, gemvMaxTokens: Infinity, gemmRowsPerThread: 4 };
  }
  // The fastest variants on the H200 through Dawn: in the 8B-shape forward (bench/runs/2026-12-02c-h200/
  // gemv-variants-8b.jsonl, where x is re-read and normalised by every workgroup) 128 threads on 4 rows reduced
  // by subgroupAdd (143.9 tok/s; 2 rows: 132.0, 8 rows: 138.2), else 8 rows in workgroup memory (142.2); alone
  // (bench/matmul-bench.ts) they all read weights at 3.4-3.55 TB/s. 64-row GEMM tiles beat 128-row ones on two of
  // the three prefill shapes.
  const gemv = gpu.features.subgroups ? { threads: 128, lanes: 128, rows: 4, subgroups: true } : { threads: 128, lanes: 128, rows: 8, subgroups: false };
  return { gemv, gemvMaxTokens: 4, gemmRowsPerThread: 4 };
}

/** The GEMV variants this device can run (for benchmarks and tests): whole-workgroup rows and 32-lane groups. */
export function gemvVariants(gpu: Gpu): GemvVariant[] {
  const out: GemvVariant[] = [];
  for (const threads of [64, 128, 256]) {
    for (const rows of [1, 2, 4, 8]) {
      out.push({ threads, lanes: threads, rows, subgroups: false });
      if (gpu.features.subgroups) out.push({ threads, lanes: threads, rows, subgroups: true });
    }
  }
  for (const rows of [1, 2, 4]) out.push({ threads: 256, lanes: 32, rows, subgroups: false });
  return out;
}

export function gemvVariantName(v: GemvVariant): string {
  return `t${v.threads}-l${v.lanes}-r${v.rows}${v.subgroups ? '-sg' : ''}`;
}

function checkVariant(gpu: Gpu, v: GemvVariant): void {
  const pow2 = (n: number) => Number.isInteger(n) && n >= 1 && (n & (n - 1)) === 0;
  const bad =
    !pow2(v.threads) || v.threads > 256 || !pow2(v.lanes) || v.lanes > v.threads ||
    !Number.isInteger(v.rows) || v.rows < 1 || v.rows > MAX_GEMV_ROWS ||
    (v.subgroups && (v.lanes !== v.threads || !gpu.features.subgroups)) ||
    v.threads > gpu.limits.maxComputeInvocationsPerWorkgroup;
  if (bad) throw new Df11Error('bad-request', `GEMV variant ${JSON.stringify(v)} is not valid on this device`);
}

/** Storage buffers of shaders/matmul_common.wgsl (included by the GEMV and GEMM shaders), and the GEMV's RMSNorm weight. */
const MATMUL_BUFFERS = ['x', 'w', 'bias', 'out'] as const;
const GEMV_BUFFERS = [...MATMUL_BUFFERS, 'norm_w'] as const;
type MatmulBuffer = (typeof MATMUL_BUFFERS)[number];
type GemvBuffer = (typeof GEMV_BUFFERS)[number];

interface Pipelines {
  gemv: KernelPipeline<GemvBuffer>;
  /** Absent when gemvMaxTokens is Infinity (the GEMM never runs; CPU adapters compile it slowly). */
  gemm: KernelPipeline<MatmulBuffer> | undefined;
  /** The GEMV with the RMSNorm of its input folded in (NORM), for projections that follow a norm (no activation). */
  normedGemv: KernelPipeline<GemvBuffer> | undefined;
}

/** The RMSNorm in front of a projection, folded into its GEMV: x = the un-normed rows, weight = (cols) f32. */
export interface FoldedNorm {
  x: StorageBinding;
  weight: StorageBinding;
}

/**
 * out = [out +] xin · Wᵀ [+ bias] with BF16 weights and f32 activations (xin = x, or act(gate) * up):
 * GEMV (decode) or register-tiled GEMM (prefill) picked by token count.
 * shaders/matmul_gemv.wgsl | matmul_gemv_sg.wgsl, shaders/matmul_gemm.wgsl
 */
export class MatmulKernel {
  /** Pipelines per activation, compiled on first use. */
  private readonly pipelines = new Map<Activation, Promise<Pipelines>>();

  private constructor(
    private readonly gpu: Gpu,
    readonly options: Readonly<Required<MatmulOptions>>,
  ) {}

  static async create(gpu: Gpu, options: MatmulOptions = {}): Promise<MatmulKernel> {
    const o = { ...defaultMatmulOptions(gpu), ...options };
    checkVariant(gpu, o.gemv);
    if (o.gemmRowsPerThread !== 4 && o.gemmRowsPerThread !== 8) throw new Df11Error('bad-request', `gemmRowsPerThread must be 4 or 8, got ${o.gemmRowsPerThread}`);
    const kernel = new MatmulKernel(gpu, o);
    await kernel.compiled('none');
    return kernel;
  }

  private compiled(activation: Activation): Promise<Pipelines> {
    let p = this.pipelines.get(activation);
    if (!p) {
      const { gemv, gemvMaxTokens, gemmRowsPerThread } = this.options;
      const ACT = ACTIVATION_CODE[activation];
      const gemvShader = gemv.subgroups ? 'matmul_gemv_sg' : 'matmul_gemv';
      const gemvConstants = { WG: gemv.threads, LANES: gemv.lanes, ROWS: gemv.rows, ACT };
      p = Promise.all([
        kernelPipeline(this.gpu, gemvShader, GEMV_BUFFERS, { ...gemvConstants, NORM: 0 }),
        gemvMaxTokens === Infinity ? undefined : kernelPipeline(this.gpu, 'matmul_gemm', MATMUL_BUFFERS, { TR: gemmRowsPerThread, ACT }),
        activation === 'none' ? kernelPipeline(this.gpu, gemvShader, GEMV_BUFFERS, { ...gemvConstants, NORM: 1 }) : undefined,
      ]).then(([gemvPipeline, gemmPipeline, normedPipeline]) => ({ gemv: gemvPipeline, gemm: gemmPipeline, normedGemv: normedPipeline }));
      this.pipelines.set(activation, p);
    }
    return p;
  }

  /**
   * x: (tokens, x_stride) f32 (with an activation: gate | up, 2 * weight.cols per token by default);
   * weight: the matrix; bias: (rows) f32 or undefined; out: (tokens, out_stride) f32.
   * Every binding must be a 16-byte multiple long (vec4 arrays).
   * norm: x is the output of this RMSNorm; GEMV calls may then skip the norm (`encodeNormed`).
   * Needs no activation and weight.cols a multiple of 4.
   */
  async bind(x: StorageBinding, weight: MatrixView, bias: StorageBinding | undefined, out: StorageBinding, activation: Activation = 'none', norm?: FoldedNorm): Promise<MatmulCall> {
    if (norm && (activation !== 'none' || weight.cols % 4 !== 0)) {
      throw new Df11Error('bad-request', `a folded RMSNorm needs no activation and a multiple of 4 columns (got ${activation}, ${weight.cols})`);
    }
    const p = await this.compiled(activation);
    const storage = { x, w: weight.binding, bias: bias ?? x, out };
    const [gemv, gemm, normed] = await Promise.all([
      BoundKernel.create(this.gpu, p.gemv, { ...storage, norm_w: x }),
      p.gemm && BoundKernel.create(this.gpu, p.gemm, storage),
      norm && p.normedGemv && BoundKernel.create(this.gpu, p.normedGemv, { ...storage, x: norm.x, bias: bias ?? norm.x, norm_w: norm.weight }),
    ]);
    const { gemv: v, gemvMaxTokens, gemmRowsPerThread } = this.options;
    return new MatmulCall(weight, bias !== undefined, activation !== 'none', (v.threads / v.lanes) * v.rows, gemvMaxTokens, 16 * gemmRowsPerThread, gemv, gemm, normed);
  }
}

export interface MatmulArgs {
  tokens: number;
  /** Element of token 0 in x, and the distance between tokens (default: weight cols, twice that with an activation). */
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
    private readonly gated: boolean,
    private readonly gemvRowsPerGroup: number,
    private readonly gemvMaxTokens: number,
    private readonly gemmTileRows: number,
    private readonly gemv: BoundKernel,
    private readonly gemm: BoundKernel | undefined,
    private readonly normed: BoundKernel | undefined,
  ) {}

  /** Whether `encodeNormed` can run `tokens` tokens: bound with a norm, and the GEMV's token count. */
  foldsNorm(tokens: number): boolean {
    return this.normed !== undefined && (tokens <= this.gemvMaxTokens || !this.gemm);
  }

  /** out = [out +] rmsnorm(x) · Wᵀ [+ bias] from the un-normed rows bound as the norm's x (see foldsNorm). */
  encodeNormed(pass: GPUComputePassEncoder, a: MatmulArgs, eps: number): void {
    if (!this.normed || !this.foldsNorm(a.tokens)) throw new Df11Error('internal', `no folded RMSNorm for ${a.tokens} tokens`);
    this.encodeGemv(this.normed, pass, a, eps);
  }

  encode(pass: GPUComputePassEncoder, a: MatmulArgs): void {
    if (a.tokens <= this.gemvMaxTokens || !this.gemm) {
      this.encodeGemv(this.gemv, pass, a, 0);
      return;
    }
    const gx = Math.ceil(this.weight.rows / this.gemmTileRows);
    const gy = Math.ceil(a.tokens / GEMM_TILE_TOKENS);
    this.gemm.encode(pass, this.params(a, 0), [gx, gy, 1]);
  }

  private encodeGemv(kernel: BoundKernel, pass: GPUComputePassEncoder, a: MatmulArgs, eps: number): void {
    const [gx, gy] = kernel.grid(Math.ceil(this.weight.rows / this.gemvRowsPerGroup));
    kernel.encode(pass, this.params(a, eps), [gx, gy, a.tokens]);
  }

  private params(a: MatmulArgs, eps: number): Params {
    const { rows, cols, offset } = this.weight;
    return {
      rows,
      cols,
      tokens: a.tokens,
      w_offset: offset,
      x_offset: a.xOffset ?? 0,
      x_stride: a.xStride ?? (this.gated ? 2 * cols : cols),
      out_offset: a.outOffset ?? 0,
      out_stride: a.outStride ?? rows,
      bias: this.hasBias ? 1 : 0,
      accumulate: a.accumulate ? 1 : 0,
      norm_eps: eps,
    };
  }

  destroy(): void {
    this.gemv.destroy();
    this.gemm?.destroy();
    this.normed?.destroy();
  }
}
