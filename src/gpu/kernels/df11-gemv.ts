/**
 * Fused DFloat11 decode + GEMV for one token (shaders/df11_gemv_body.wgsl; row sums reduced in workgroup
 * memory, df11_gemv.wgsl, or with subgroupAdd where the device has `subgroups`, df11_gemv_sg.wgsl): out[r] = [out[r] +] W[r] · xin
 * [+ bias[r]] for a 2-D matrix W of a DF11 unit on the GPU, reading only the compressed stream (no BF16
 * copy of W is written). Two dispatches per call: one workgroup per stream block writes per-row partial
 * sums into a scratch buffer (`partials`, gemvPartialsBytes), then one invocation per row adds them up.
 *
 *   const gemv = await Df11GemvKernel.create(decoder);                 // pipelines per activation
 *   const call = await gemv.bind(unit, i, { x, out, partials });        // params fixed at bind time
 *   call.encode(pass);                                                 // record both dispatches
 *   await decoder.checkStatus();                                        // corrupt data: Df11Error
 *
 * Exactness: the decoded weights are the BF16 values bit for bit (with x = a unit vector e_j, out is
 * column j exactly); the dot products are summed in another order than decode + matmul_gemv, so they
 * agree with it within f32 summation error (tests: 1e-5 of Σ|w·x| per row), not bit for bit.
 */
import { Df11Error, isDf11Error } from '../../errors.ts';
import { bindGroupEntries, shaderBindings, type ShaderBindings } from '../bindings.ts';
import { allowsStreamWorkgroup, blockOf, stageWords, type Df11Decoder, type GpuDf11Unit } from '../df11-decode.ts';
import type { Gpu } from '../gpu.ts';
import { DF11_GEMV, DF11_SCAN_SG } from '../shader-constants.ts';
import { packUniform, uniformLayout, type UniformLayout } from '../uniforms.ts';
import { spreadGroups, type StorageBinding } from './kernel.ts';
import { ACTIVATION_CODE, type Activation } from './matmul.ts';

const SHADER = 'df11_gemv';
const SHADER_SG = 'df11_gemv_sg';
const { REDUCE_WG } = DF11_GEMV;
/** Storage buffers of the block pass (`main`), bound by their names in the shader. */
const MAIN_BUFFERS = ['stream', 'sign_mantissa', 'luts', 'gaps', 'output_positions', 'partials', 'status', 'x'] as const;
/** Storage buffers the row reduction (`reduce`) uses. */
const REDUCE_BUFFERS = ['output_positions', 'partials', 'bias', 'out'] as const;
type MainBuffer = (typeof MAIN_BUFFERS)[number];
type ReduceBuffer = (typeof REDUCE_BUFFERS)[number];

/** One matrix's work: blocks holding its elements, and its shape. */
export interface GemvGeometry {
  firstBlock: number;
  blocks: number;
  rows: number;
  cols: number;
  begin: number;
}

/**
 * Where matrix `matrices` of `unit` lies in the stream (2-D matrices only). Several indices: matrices stored
 * back to back in the unit with the same column count (q | k | v, gate | up), one matrix of their rows stacked.
 */
export function gemvGeometry(unit: GpuDf11Unit, matrices: number | readonly number[]): GemvGeometry {
  const indices = typeof matrices === 'number' ? [matrices] : matrices;
  let rows = 0;
  let cols = 0;
  let end = 0;
  for (const [k, i] of indices.entries()) {
    const m = unit.source.matrices[i];
    if (!m) throw new Df11Error('bad-request', `unit ${unit.name} has no matrix ${i}`);
    if (m.shape.length !== 2 || m.size === 0) throw new Df11Error('bad-request', `fused GEMV needs a non-empty 2-D matrix; ${m.name} has shape [${m.shape}]`);
    if (k > 0 && (m.offset !== end || m.shape[1] !== cols)) throw new Df11Error('bad-request', `fused GEMV: ${m.name} does not continue the matrix before it (same columns, back to back)`);
    rows += m.shape[0]!;
    cols = m.shape[1]!;
    end = m.offset + m.size;
  }
  if (indices.length === 0) throw new Df11Error('bad-request', 'fused GEMV of no matrix');
  const begin = unit.source.matrices[indices[0]!]!.offset;
  const op = unit.source.outputPositions;
  const firstBlock = blockOf(op, begin);
  return { firstBlock, blocks: blockOf(op, end - 1) - firstBlock + 1, rows, cols, begin };
}

/** Whether gemvGeometry accepts `matrices` of `unit` as one stacked matrix. */
export function stacksInUnit(unit: GpuDf11Unit, matrices: readonly number[]): boolean {
  try {
    gemvGeometry(unit, matrices);
    return true;
  } catch (e) {
    if (isDf11Error(e, 'bad-request')) return false;
    throw e;
  }
}

/** Bytes of the partial-sum scratch a call on this matrix needs: (rows + blocks) f32. */
export function gemvPartialsBytes(g: GemvGeometry): number {
  return Math.ceil(((g.rows + g.blocks) * 4) / 16) * 16;
}

export interface Df11GemvBuffers {
  /** (cols) f32 input from xOffset; with an activation, gate | up: (2 * cols). */
  x: StorageBinding;
  /** (rows) f32 from biasOffset, or absent. */
  bias?: StorageBinding;
  /** f32; row r goes to element outOffset + r. */
  out: StorageBinding;
  /** Scratch of at least gemvPartialsBytes of the matrix; may be shared by calls encoded one after another. */
  partials: GPUBuffer;
}

export interface Df11GemvArgs {
  activation?: Activation;
  xOffset?: number;
  outOffset?: number;
  biasOffset?: number;
  /** Add to out instead of overwriting it (residual connection). */
  accumulate?: boolean;
}

interface Pipelines {
  main: GPUComputePipeline;
  reduce: GPUComputePipeline;
  mainBindings: ShaderBindings<MainBuffer>;
  reduceBindings: ShaderBindings<ReduceBuffer>;
}

export class Df11GemvKernel {
  private readonly pipelines = new Map<Activation, Promise<Pipelines>>();

  private constructor(
    readonly decoder: Df11Decoder,
    readonly subgroups: boolean,
    readonly workgroupSize: number,
    private readonly layout: UniformLayout,
  ) {}

  /**
   * Uses the decoder's status word; its units are the only ones it accepts.
   * `subgroups` (default: whether the device has the feature) picks the row reduction.
   * `workgroupSize` (64, 128, 256 or 512): default the decoder's (256 unless it was given another): 0.339
   * against 0.371 ms at 512 on 14336 × 4096 on an H200 through Dawn (bench/runs/2026-12-02f-h200/ab-lut2-fgemv).
   */
  static async create(decoder: Df11Decoder, options: { subgroups?: boolean; workgroupSize?: number } = {}): Promise<Df11GemvKernel> {
    const gpu = decoder.gpu;
    const subgroups = options.subgroups ?? gpu.features.subgroups;
    if (subgroups && !gpu.features.subgroups) throw new Df11Error('bad-request', 'fused GEMV with subgroups needs the device\'s subgroups feature');
    const size = options.workgroupSize ?? decoder.workgroupSize;
    if (!allowsStreamWorkgroup(gpu, size)) throw new Df11Error('gpu-validation', `fused GEMV workgroup size ${size} is not supported on this device`);
    const kernel = new Df11GemvKernel(decoder, subgroups, size, uniformLayout(gpu.shaderSource(SHADER), 'Params'));
    await kernel.compiled('none');
    return kernel;
  }

  private get gpu(): Gpu {
    return this.decoder.gpu;
  }

  private compiled(activation: Activation): Promise<Pipelines> {
    let p = this.pipelines.get(activation);
    if (!p) {
      const wg = this.workgroupSize;
      // besides df11_stream.wgsl's arrays (and a WG-word scan): the row reduction (df11_gemv_sg: 2 * SLOTS f32 and the
      // scan's SLOTS u32, df11_gemv: WG f32) and the job struct
      const reduction = this.subgroups ? 4 * 3 * DF11_SCAN_SG.SLOTS : 4 * wg;
      const constants = { WG: wg, STAGE_WORDS: stageWords(this.gpu, wg, reduction + 16), ACT: ACTIVATION_CODE[activation] };
      const shader = this.subgroups ? SHADER_SG : SHADER;
      // names checked before compiling (a wrong one throws gpu-validation)
      const mainBindings = shaderBindings(shader, this.gpu.shaderSource(shader), MAIN_BUFFERS, 'main');
      const reduceBindings = shaderBindings(SHADER, this.gpu.shaderSource(SHADER), REDUCE_BUFFERS, 'reduce');
      p = Promise.all([this.gpu.computePipeline(shader, constants, 'main'), this.gpu.computePipeline(SHADER, {}, 'reduce')]).then(
        ([main, reduce]) => ({ main, reduce, mainBindings, reduceBindings }),
      );
      this.pipelines.set(activation, p);
    }
    return p;
  }

  /** A call on matrix `matrices` of `unit` (several: stacked, see gemvGeometry); params fixed here. */
  async bind(unit: GpuDf11Unit, matrices: number | readonly number[], buffers: Df11GemvBuffers, args: Df11GemvArgs = {}): Promise<Df11GemvCall> {
    if (unit.owner !== this.decoder) throw new Df11Error('bad-request', `unit ${unit.name} was uploaded by another Df11Decoder`);
    const geometry = gemvGeometry(unit, matrices);
    const which = String(matrices);
    if (buffers.partials.size < gemvPartialsBytes(geometry)) {
      throw new Df11Error('bad-request', `fused GEMV partials need ${gemvPartialsBytes(geometry)} bytes, the buffer has ${buffers.partials.size}`);
    }
    const p = await this.compiled(args.activation ?? 'none');
    const uniform = await this.gpu.createBuffer({ label: `df11 gemv ${unit.name} ${which} params`, size: this.layout.size, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    const params = {
      n: unit.n,
      n_bytes: unit.nBytes,
      n_blocks: unit.nBlocks,
      n_tables: unit.nTables,
      first_block: geometry.firstBlock,
      work_items: geometry.blocks,
      begin: geometry.begin,
      rows: geometry.rows,
      cols: geometry.cols,
      x_offset: args.xOffset ?? 0,
      out_offset: args.outOffset ?? 0,
      bias: buffers.bias ? 1 : 0,
      bias_offset: args.biasOffset ?? 0,
      accumulate: args.accumulate ? 1 : 0,
    };
    this.gpu.writeBuffer(uniform, 0, new Uint8Array(packUniform(this.layout, params)));
    const resource = (b: StorageBinding): GPUBufferBinding => ('buffer' in b ? b : { buffer: b });
    const u = unit.buffers;
    const device = this.gpu.device;
    const main = device.createBindGroup({
      label: `df11 gemv ${unit.name} ${which}`,
      layout: p.main.getBindGroupLayout(0),
      entries: bindGroupEntries(p.mainBindings, { buffer: uniform }, {
        stream: { buffer: u.stream },
        sign_mantissa: { buffer: u.signMantissa },
        luts: { buffer: u.luts },
        gaps: { buffer: u.gaps },
        output_positions: { buffer: u.outputPositions },
        partials: { buffer: buffers.partials },
        status: { buffer: this.decoder.statusBuffer },
        x: resource(buffers.x),
      }),
    });
    const reduce = device.createBindGroup({
      label: `df11 gemv reduce ${unit.name} ${which}`,
      layout: p.reduce.getBindGroupLayout(0),
      entries: bindGroupEntries(p.reduceBindings, { buffer: uniform }, {
        output_positions: { buffer: u.outputPositions },
        partials: { buffer: buffers.partials },
        // without a bias the shader never reads it: any read-only buffer will do
        bias: buffers.bias ? resource(buffers.bias) : { buffer: u.outputPositions },
        out: resource(buffers.out),
      }),
    });
    return new Df11GemvCall(this.gpu, geometry, p, { main, reduce }, uniform);
  }
}

export class Df11GemvCall {
  constructor(
    private readonly gpu: Gpu,
    readonly geometry: GemvGeometry,
    private readonly pipelines: Pipelines,
    private readonly groups: { main: GPUBindGroup; reduce: GPUBindGroup },
    private readonly uniform: GPUBuffer,
  ) {}

  /** Record the block pass and the row reduction (the pass orders them; later calls may reuse `partials`). */
  encode(pass: GPUComputePassEncoder): void {
    const [bx, by] = this.grid(this.geometry.blocks);
    const [rx, ry] = this.grid(Math.ceil(this.geometry.rows / REDUCE_WG));
    pass.setPipeline(this.pipelines.main);
    pass.setBindGroup(0, this.groups.main);
    pass.dispatchWorkgroups(bx, by);
    pass.setPipeline(this.pipelines.reduce);
    pass.setBindGroup(0, this.groups.reduce);
    pass.dispatchWorkgroups(rx, ry);
  }

  /** `groups` spread over x and y within the device's per-dimension limit (gpu-limits past its square). */
  private grid(groups: number): [number, number] {
    const max = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    const grid = spreadGroups(groups, max);
    if (grid[1] > max) throw new Df11Error('gpu-limits', `fused GEMV of ${this.geometry.blocks} blocks exceeds this device's ${max} workgroups per dimension`);
    return grid;
  }

  destroy(): void {
    this.uniform.destroy();
  }
}
