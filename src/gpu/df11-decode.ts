/**
 * GPU decode of DFloat11 units (shaders/df11_decode.wgsl): whole matrices of a unit, arbitrary element
 * ranges, and rows of an embedding matrix, into BF16 pairs packed in u32 (element 2i in the low half).
 *
 *   const decoder = await Df11Decoder.create(gpu);          // one per Gpu; owns the pipeline
 *   const unit = await decoder.upload(df11Unit);            // compressed arrays, resident on the GPU
 *   decoder.encodeMatrix(encoder, unit, i, out, outOffset); // out: >= bf16PairBytes(matrix size) bytes
 *   const job = await decoder.createRowJob(unit, i, maxTokens);
 *   job.setTokens(ids); decoder.encodeRows(encoder, job, out); // out: (n_tokens, row_len) BF16
 *   const range = await decoder.createRangeJob(unit, begin, end); decoder.encodeRange(encoder, range, out);
 *   await decoder.checkStatus();                            // throws Df11Error('corrupt-stream')
 *
 * Decoding never throws for bad data by itself: the kernel ORs flags into a status word (zero or > 32
 * code length, pointer chain too deep or past the tables, a block whose code count disagrees with
 * output_positions, a window gap that disagrees with where the previous code ended, a code running past
 * the stream, a token id past the matrix: the CPU decoder's checks) which `checkStatus` reads and clears.
 * `encode*` accept a command encoder (they open their own pass) or a compute pass; uniforms are written at
 * upload / setTokens / createRangeJob time, so many encodes may share a submit (but one row job holds one
 * set of tokens at a time). One-shot decodes read back to the CPU live in df11-readback.ts.
 */
import { Df11Error } from '../errors.ts';
import { BYTES_PER_BLOCK, GAP_BYTES_PER_BLOCK, type Df11Unit } from '../format/df11-types.ts';
import { validateStream } from '../format/df11-cpu-decoder.ts';
import { bindGroupEntries, shaderBindings, type ShaderBindings } from './bindings.ts';
import type { Gpu } from './gpu.ts';
import { DF11_SCAN_SG, DF11_STREAM } from './shader-constants.ts';
import { packUniform, uniformLayout, type UniformLayout } from './uniforms.ts';

/** The span prefix sum in workgroup memory, or with subgroup operations (needs the `subgroups` feature). */
const SHADER = 'df11_decode';
const SHADER_SG = 'df11_decode_sg';
/** Storage buffers of shaders/df11_decode.wgsl, bound by these names. */
const BUFFERS = ['stream', 'sign_mantissa', 'luts', 'gaps', 'output_positions', 'out', 'status', 'token_ids'] as const;
/** Most tables a unit may have: 16 pointer targets (values 240..255) + table 0 + the length table. */
const MAX_TABLES = 18;
/**
 * Exponent staging per workgroup, at most: 8 KiB, a typical block (~12.5 K codes of ~2.6 bits) in two chunks.
 * Workgroup memory decides how many workgroups a multiprocessor holds at once, and this kernel needs them all:
 * on an H200 through Dawn, 256 invocations decode 425 GB/s with 2048 words, 374 with 2560, 323 with 4096
 * (as if a 100 KiB share held 8, 7 and 5 of them: Dawn does not report occupancy); 512 invocations 415 with 2048, 390 with 4096
 * (bench/runs/2026-12-02e-h200/ab-stage2, ab-stage).
 */
const MAX_STAGE_WORDS = 2048;
/** Bytes of workgroup memory besides the staging and the scan: a work struct and the 256-entry vec2<u32> table. */
const FIXED_WORKGROUP_BYTES = 32 + 2 * 4 * 256;
/** Uniform slots are spaced by the largest minUniformBufferOffsetAlignment WebGPU allows. */
const SLOT = 256;

/**
 * STAGE_WORDS for a kernel built on shaders/df11_stream.wgsl with `size` invocations: what the device's
 * workgroup memory leaves after the stream's own arrays and `extraBytes` of the kernel's, at most `most`.
 */
export function stageWords(gpu: Gpu, size: number, extraBytes: number, most = MAX_STAGE_WORDS): number {
  const free = gpu.limits.maxComputeWorkgroupStorageSize - FIXED_WORKGROUP_BYTES - 4 * size - extraBytes;
  return Math.min(most, Math.floor(free / 4));
}

/** Whether `gpu` runs a kernel on shaders/df11_stream.wgsl with `size` invocations (64, 128, 256 or 512: divides a block's 512 windows). */
export function allowsStreamWorkgroup(gpu: Gpu, size: number): boolean {
  return [64, 128, 256, 512].includes(size) && size <= gpu.limits.maxComputeInvocationsPerWorkgroup && size <= gpu.limits.maxComputeWorkgroupSizeX;
}

/** Status flags set by the kernel (FLAG_* in df11_stream.wgsl, from DF11_STREAM). */
const { FLAG_TOKEN } = DF11_STREAM;
const FLAG_NAMES: Array<[number, string]> = [
  [DF11_STREAM.FLAG_LENGTH, 'zero or over-long code length'],
  [DF11_STREAM.FLAG_POINTER, 'LUT pointer past the tables or chain deeper than 4'],
  [DF11_STREAM.FLAG_COUNT, 'block code count disagrees with output_positions'],
  [FLAG_TOKEN, 'token id out of range'],
  [DF11_STREAM.FLAG_GAP, "a window's gap disagrees with where the previous code ended"],
  [DF11_STREAM.FLAG_STREAM, 'a code runs past the end of the stream'],
];

/** Bytes of a BF16-pair buffer holding `elements` elements. */
export function bf16PairBytes(elements: number): number {
  return Math.max(4, Math.ceil(elements / 2) * 4);
}

/** Byte lengths of a unit's five arrays as stored (luts: the k stored tables of 256 bytes). */
export interface Df11UnitLengths {
  encodedExponent: number;
  signMantissa: number;
  luts: number;
  gaps: number;
  outputPositions: number;
}

/** Bytes a unit takes once uploaded: each array padded to 4 bytes, the luts with LOOKUP_TABLE_BYTES appended. */
export function uploadedUnitBytes(lengths: Df11UnitLengths): number {
  const pad = (n: number): number => Math.max(4, Math.ceil(n / 4) * 4);
  return pad(lengths.encodedExponent) + pad(lengths.signMantissa) + pad(lengths.luts + LOOKUP_TABLE_BYTES) + pad(lengths.gaps) + pad(lengths.outputPositions);
}

/** Byte lengths of a unit's arrays. */
export function unitLengths(unit: Df11Unit): Df11UnitLengths {
  return {
    encodedExponent: unit.encodedExponent.byteLength,
    signMantissa: unit.signMantissa.byteLength,
    luts: unit.luts.byteLength,
    gaps: unit.gaps.byteLength,
    outputPositions: unit.outputPositions.byteLength,
  };
}

/** The 2 × 256 u32 fast-path tables withLookupTables appends to a unit's LUTs. */
const LOOKUP_TABLE_BYTES = 512 * 4;

type Target = GPUCommandEncoder | GPUComputePassEncoder;
/** Bind groups by output buffer, then by params slot and output offset. */
type BindGroupCache = WeakMap<GPUBuffer, Map<string, GPUBindGroup>>;

/** One dispatch: blocks [firstBlock, firstBlock + blocks) writing elements [begin, end) at outByteOffset. */
interface Part {
  firstBlock: number;
  blocks: number;
  begin: number;
  end: number;
  outByteOffset: number;
  outBytes: number;
  paramsOffset: number;
}

/** A unit's compressed arrays on the GPU; used only with the decoder that uploaded it. */
export class GpuDf11Unit {
  readonly bindGroups: BindGroupCache = new WeakMap();

  constructor(
    readonly owner: Df11Decoder,
    readonly source: Omit<Df11Unit, 'encodedExponent' | 'signMantissa' | 'gaps' | 'luts'>,
    readonly n: number,
    readonly nBytes: number,
    readonly nTables: number,
    readonly buffers: { stream: GPUBuffer; signMantissa: GPUBuffer; luts: GPUBuffer; gaps: GPUBuffer; outputPositions: GPUBuffer },
    /** One uniform slot per part of every matrix. */
    readonly params: GPUBuffer,
    readonly matrixParts: Part[][],
  ) {}

  get name(): string {
    return this.source.name;
  }

  get nBlocks(): number {
    return this.source.outputPositions.length - 1;
  }

  destroy(): void {
    for (const b of Object.values(this.buffers)) b.destroy();
    this.params.destroy();
  }
}

/** Rows of one matrix of a unit for a set of token ids (an embedding lookup). */
export class Df11RowJob {
  nTokens = 0;

  constructor(
    private readonly gpu: Gpu,
    private readonly layout: UniformLayout,
    readonly unit: GpuDf11Unit,
    readonly matrixIndex: number,
    readonly maxTokens: number,
    readonly rowLen: number,
    private readonly nRows: number,
    /** Workgroups per token: the most blocks one row of the matrix touches. */
    readonly blocksPerRow: number,
    readonly params: GPUBuffer,
    readonly ids: GPUBuffer,
  ) {}

  /** Write the token ids (queue order: affects dispatches submitted after this call). */
  setTokens(ids: Uint32Array): void {
    if (ids.length > this.maxTokens) throw new Df11Error('bad-request', `${ids.length} tokens exceed the row job's ${this.maxTokens}`);
    if (ids.length > 0) this.gpu.writeBuffer(this.ids, 0, ids);
    // the params depend on the token count only (a decode step writes the one id)
    if (ids.length === this.nTokens) return;
    this.nTokens = ids.length;
    const values = baseParams(this.unit);
    Object.assign(values, {
      mode: 1,
      work_items: ids.length * this.blocksPerRow,
      begin: this.unit.source.matrices[this.matrixIndex].offset,
      row_len: this.rowLen,
      n_rows: this.nRows,
      blocks_per_row: this.blocksPerRow,
    });
    this.gpu.writeBuffer(this.params, 0, new Uint8Array(packUniform(this.layout, values)));
  }

  /** Bytes the output of the current tokens needs. */
  get outputBytes(): number {
    return bf16PairBytes(this.nTokens * this.rowLen);
  }

  destroy(): void {
    this.params.destroy();
    this.ids.destroy();
  }
}

/** A range of a unit: its dispatches and their params (see Df11Decoder.createRangeJob). */
export class Df11RangeJob {
  /** Bind groups by output buffer and offset (the params never change after createRangeJob). */
  readonly bindGroups: BindGroupCache = new WeakMap();

  constructor(
    readonly unit: GpuDf11Unit,
    readonly parts: readonly Part[],
    readonly params: GPUBuffer,
    /** Bytes the output needs. */
    readonly outputBytes: number,
  ) {}

  destroy(): void {
    this.params.destroy();
  }
}

export class Df11Decoder {
  private constructor(
    readonly gpu: Gpu,
    readonly workgroupSize: number,
    /** Whether the span prefix sum uses subgroup operations (df11_decode_sg.wgsl). */
    readonly subgroups: boolean,
    /** Words of exponent staging per workgroup (STAGE_WORDS). */
    readonly stageWords: number,
    private readonly layout: UniformLayout,
    private readonly bindings: ShaderBindings<(typeof BUFFERS)[number]>,
    private readonly pipeline: GPUComputePipeline,
    private readonly status: GPUBuffer,
    private readonly noTokens: GPUBuffer,
  ) {}

  /**
   * `workgroupSize` (64, 128, 256 or 512): default 256, two 64-bit windows per invocation, which every device
   * allows (425 vs 415 GB/s for 512 on an H200 through Dawn, with the default staging; see MAX_STAGE_WORDS).
   * `subgroups` (default: whether the device has the feature) picks the span prefix sum: subgroup
   * operations and one barrier (df11_scan_sg.wgsl), or workgroup memory and 2 log2(size) + 1 barriers.
   * `maxStageWords` (default MAX_STAGE_WORDS, 2048) caps the exponent staging, for tuning on other devices
   * (the bench's --stage); the device's workgroup memory may allow less.
   */
  static async create(gpu: Gpu, options: { workgroupSize?: number; subgroups?: boolean; maxStageWords?: number } = {}): Promise<Df11Decoder> {
    const size = options.workgroupSize ?? 256;
    if (!allowsStreamWorkgroup(gpu, size)) {
      throw new Df11Error('gpu-validation', `df11 decode workgroup size ${size} is not supported on this device`);
    }
    const subgroups = options.subgroups ?? gpu.features.subgroups;
    if (subgroups && !gpu.features.subgroups) throw new Df11Error('gpu-validation', 'df11 decode with subgroups needs the device feature `subgroups`');
    const shader = subgroups ? SHADER_SG : SHADER;
    const source = gpu.shaderSource(shader);
    const layout = uniformLayout(source, 'Params');
    const bindings = shaderBindings(shader, source, BUFFERS);
    // df11_scan_sg.wgsl's subgroup totals, beyond the WG words stageWords counts for a scan
    const extra = subgroups ? 4 * DF11_SCAN_SG.SLOTS : 0;
    const stage = stageWords(gpu, size, extra, options.maxStageWords);
    if (!(stage >= 1)) throw new Df11Error('gpu-validation', `df11 decode: no workgroup memory left for exponent staging (${stage} words)`);
    const pipeline = await gpu.computePipeline(shader, { WG: size, STAGE_WORDS: stage });
    const status = await gpu.createBuffer({ label: 'df11 status', size: 8, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    const noTokens = await gpu.createBuffer({ label: 'df11 no tokens', size: 16, usage: GPUBufferUsage.STORAGE });
    const decoder = new Df11Decoder(gpu, size, subgroups, stage, layout, bindings, pipeline, status, noTokens);
    decoder.clearStatus();
    return decoder;
  }

  /** Upload a unit's compressed arrays (resident until `unit.destroy()`). */
  async upload(unit: Df11Unit): Promise<GpuDf11Unit> {
    const { nTables, n, nBytes } = checkGeometry(unit, this.gpu.maxBindingSize);
    const label = `df11 ${unit.name}`;
    const buffers = {
      stream: await this.gpu.upload(streamWords(unit.encodedExponent), `${label} encoded_exponent (stream words)`),
      signMantissa: await this.gpu.upload(unit.signMantissa, `${label} sign_mantissa`),
      luts: await this.gpu.upload(withLookupTables(unit.luts, nTables), `${label} luts + lookup tables`),
      gaps: await this.gpu.upload(unit.gaps, `${label} gaps`),
      outputPositions: await this.gpu.upload(unit.outputPositions, `${label} output_positions`),
    };
    const { encodedExponent: _e, signMantissa: _s, gaps: _g, luts: _l, ...source } = unit;
    const matrixParts: Part[][] = [];
    let slots = 0;
    for (const m of unit.matrices) {
      const parts = this.planRange(unit.outputPositions, m.offset, m.offset + m.size, slots);
      slots += parts.length;
      matrixParts.push(parts);
    }
    const params = await this.gpu.createBuffer({ label: `${label} params`, size: Math.max(1, slots) * SLOT, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    const gpuUnit = new GpuDf11Unit(this, source, n, nBytes, nTables, buffers, params, matrixParts);
    for (const part of matrixParts.flat()) this.writeRangeParams(gpuUnit, params, part);
    return gpuUnit;
  }

  /** Record decoding matrix `matrixIndex` of `unit` into `out` at `outOffset` (a multiple of 256). */
  encodeMatrix(target: Target, unit: GpuDf11Unit, matrixIndex: number, out: GPUBuffer, outOffset = 0): void {
    const parts = unit.matrixParts[matrixIndex];
    if (!parts) throw new Df11Error('bad-request', `unit ${unit.name} has no matrix ${matrixIndex}`);
    this.encodeParts(target, unit, parts, unit.params, unit.bindGroups, out, outOffset);
  }

  /** Rows of matrix `matrixIndex` (2-D, even row length) for up to `maxTokens` token ids at a time. */
  async createRowJob(unit: GpuDf11Unit, matrixIndex: number, maxTokens: number): Promise<Df11RowJob> {
    const m = unit.source.matrices[matrixIndex];
    if (!m) throw new Df11Error('bad-request', `unit ${unit.name} has no matrix ${matrixIndex}`);
    const nRows = m.shape[0];
    const rowLen = nRows > 0 ? m.size / nRows : 0;
    if (m.shape.length !== 2 || rowLen % 2 !== 0 || rowLen === 0) {
      throw new Df11Error('bad-request', `row decode needs a 2-D matrix with an even row length; ${m.name} has shape [${m.shape}]`);
    }
    if (maxTokens * rowLen * 2 > this.gpu.maxBindingSize) {
      throw new Df11Error('gpu-limits', `${maxTokens} rows of ${rowLen} BF16 exceed one storage binding`);
    }
    const blocksPerRow = maxBlocksPerRow(unit.source.outputPositions, m.offset, nRows, rowLen);
    const params = await this.gpu.createBuffer({ label: `${unit.name} rows params`, size: this.layout.size, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    const ids = await this.gpu.createBuffer({ label: `${unit.name} token ids`, size: Math.max(16, maxTokens * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    return new Df11RowJob(this.gpu, this.layout, unit, matrixIndex, maxTokens, rowLen, nRows, blocksPerRow, params, ids);
  }

  /** Record decoding the job's rows into `out` (n_tokens, row_len) at `outOffset` (a multiple of 256). */
  encodeRows(target: Target, job: Df11RowJob, out: GPUBuffer, outOffset = 0): void {
    if (job.nTokens === 0) return;
    if (out.size - outOffset < job.outputBytes) {
      throw new Df11Error('bad-request', `row output needs ${job.outputBytes} bytes, the buffer has ${out.size - outOffset} past offset ${outOffset}`);
    }
    const unit = job.unit;
    // bound for the job's largest token count (or the buffer), so the cached group serves every call
    const size = Math.min(bf16PairBytes(job.maxTokens * job.rowLen), out.size - outOffset) & ~3;
    const key = `rows ${outOffset} ${size}`;
    const group = this.bindGroup(unit.bindGroups, out, key, () => this.createBindGroup(unit, job.params, 0, out, outOffset, size, job.ids));
    this.withPass(target, (pass) => {
      pass.setPipeline(this.pipeline);
      pass.setBindGroup(0, group);
      this.dispatch(pass, job.nTokens * job.blocksPerRow);
    });
  }

  /**
   * Elements [begin, end) of the unit as a one-off job with its own params (any range whose output fits
   * one buffer; split into dispatches that fit a storage binding). Free it with `destroy`.
   */
  async createRangeJob(unit: GpuDf11Unit, begin: number, end: number): Promise<Df11RangeJob> {
    if (!(begin >= 0 && end <= unit.n && begin <= end)) throw new Df11Error('bad-request', `range [${begin}, ${end}) outside unit ${unit.name} of ${unit.n}`);
    if (bf16PairBytes(end - begin) > this.gpu.limits.maxBufferSize) throw new Df11Error('gpu-limits', `range of ${end - begin} elements exceeds one buffer`);
    const parts = this.planRange(unit.source.outputPositions, begin, end, 0);
    const params = await this.gpu.createBuffer({ label: 'df11 range params', size: Math.max(1, parts.length) * SLOT, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    for (const part of parts) this.writeRangeParams(unit, params, part);
    return new Df11RangeJob(unit, parts, params, bf16PairBytes(end - begin));
  }

  /** Record decoding the job's range into `out` at `outOffset` (a multiple of 256). */
  encodeRange(target: Target, job: Df11RangeJob, out: GPUBuffer, outOffset = 0): void {
    this.encodeParts(target, job.unit, job.parts, job.params, job.bindGroups, out, outOffset);
  }

  /** The status word every kernel reading this decoder's units flags corrupt data into (the shader's `status` buffer). */
  get statusBuffer(): GPUBuffer {
    return this.status;
  }

  /** Throw Df11Error('corrupt-stream') if a decode since the last check flagged corrupt data; clears the flags. */
  async checkStatus(): Promise<void> {
    const [flags, block] = new Uint32Array(await this.gpu.read(this.status));
    if (flags === 0) return;
    this.clearStatus();
    const what = FLAG_NAMES.filter(([bit]) => flags & bit).map(([, name]) => name).join('; ');
    const where = block === 0xffffffff ? '' : ` (first at block ${block})`;
    // a bad token id is the caller's error; anything else is bad data
    throw new Df11Error(flags === FLAG_TOKEN ? 'bad-request' : 'corrupt-stream', `DFloat11 GPU decode: ${what}${where}`);
  }

  destroy(): void {
    this.status.destroy();
    this.noTokens.destroy();
  }

  private clearStatus(): void {
    this.gpu.writeBuffer(this.status, 0, new Uint32Array([0, 0xffffffff]));
  }

  /** Split [begin, end) into dispatches whose output fits one storage binding (256-byte aligned offsets). */
  private planRange(outputPositions: Uint32Array, begin: number, end: number, firstSlot: number): Part[] {
    const parts: Part[] = [];
    if (end <= begin) return parts;
    const partElements = Math.floor(this.gpu.maxBindingSize / 256) * 128;
    for (let b = begin; b < end; b += partElements) {
      const e = Math.min(end, b + partElements);
      const firstBlock = blockOf(outputPositions, b);
      parts.push({
        firstBlock,
        blocks: blockOf(outputPositions, e - 1) - firstBlock + 1,
        begin: b,
        end: e,
        outByteOffset: (b - begin) * 2,
        outBytes: bf16PairBytes(e - b),
        paramsOffset: (firstSlot + parts.length) * SLOT,
      });
    }
    return parts;
  }

  private writeRangeParams(unit: GpuDf11Unit, params: GPUBuffer, part: Part): void {
    const values = baseParams(unit);
    Object.assign(values, { mode: 0, first_block: part.firstBlock, work_items: part.blocks, begin: part.begin, end: part.end });
    this.gpu.writeBuffer(params, part.paramsOffset, new Uint8Array(packUniform(this.layout, values)));
  }

  private encodeParts(target: Target, unit: GpuDf11Unit, parts: readonly Part[], params: GPUBuffer, cache: BindGroupCache, out: GPUBuffer, outOffset: number): void {
    if (outOffset % this.gpu.limits.minStorageBufferOffsetAlignment !== 0) {
      throw new Df11Error('bad-request', `output offset ${outOffset} is not a multiple of ${this.gpu.limits.minStorageBufferOffsetAlignment}`);
    }
    this.withPass(target, (pass) => {
      pass.setPipeline(this.pipeline);
      for (const part of parts) {
        const key = `${part.paramsOffset} ${outOffset}`;
        const create = () => this.createBindGroup(unit, params, part.paramsOffset, out, outOffset + part.outByteOffset, part.outBytes, this.noTokens);
        pass.setBindGroup(0, this.bindGroup(cache, out, key, create));
        this.dispatch(pass, part.blocks);
      }
    });
  }

  private bindGroup(cache: BindGroupCache, out: GPUBuffer, key: string, create: () => GPUBindGroup): GPUBindGroup {
    let byKey = cache.get(out);
    if (!byKey) cache.set(out, (byKey = new Map()));
    let group = byKey.get(key);
    if (!group) byKey.set(key, (group = create()));
    return group;
  }

  private createBindGroup(unit: GpuDf11Unit, params: GPUBuffer, paramsOffset: number, out: GPUBuffer, outOffset: number, outBytes: number, ids: GPUBuffer): GPUBindGroup {
    if (unit.owner !== this) throw new Df11Error('bad-request', `unit ${unit.name} was uploaded by another Df11Decoder`);
    const b = unit.buffers;
    return this.gpu.device.createBindGroup({
      label: `df11 ${unit.name}`,
      layout: this.pipeline.getBindGroupLayout(0),
      entries: bindGroupEntries(this.bindings, { buffer: params, offset: paramsOffset, size: this.layout.size }, {
        stream: { buffer: b.stream },
        sign_mantissa: { buffer: b.signMantissa },
        luts: { buffer: b.luts },
        gaps: { buffer: b.gaps },
        output_positions: { buffer: b.outputPositions },
        out: { buffer: out, offset: outOffset, size: outBytes },
        status: { buffer: this.status },
        token_ids: { buffer: ids },
      }),
    });
  }

  /** `count` workgroups, folded into 2-D when above the per-dimension limit (extra ones exit at once). */
  private dispatch(pass: GPUComputePassEncoder, count: number): void {
    if (count === 0) return;
    const maxX = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    const x = Math.min(count, maxX);
    const y = Math.ceil(count / x);
    if (y > maxX) throw new Df11Error('gpu-limits', `df11 decode of ${count} blocks exceeds the dispatch limits`);
    pass.dispatchWorkgroups(x, y);
  }

  private withPass(target: Target, record: (pass: GPUComputePassEncoder) => void): void {
    if ('beginComputePass' in target) {
      const pass = target.beginComputePass({ label: 'df11 decode' });
      record(pass);
      pass.end();
    } else {
      record(target);
    }
  }
}

/** Params shared by every dispatch of a unit; mode-specific members are overwritten by the caller. */
function baseParams(unit: GpuDf11Unit): Record<string, number> {
  return {
    n: unit.n, n_bytes: unit.nBytes, n_blocks: unit.nBlocks, n_tables: unit.nTables,
    mode: 0, first_block: 0, work_items: 0, begin: 0, end: 0, row_len: 0, n_rows: 0, blocks_per_row: 0,
  };
}

/**
 * The exponent stream as the kernel reads it: words of 4 stream bytes with the first in the most significant
 * byte (the last word zero-padded), so that its MSB-first bits need no byte swap on the GPU.  (ceil(nBytes / 4))
 */
export function streamWords(stream: Uint8Array): Uint32Array {
  const words = new Uint32Array(Math.ceil(stream.length / 4));
  new Uint8Array(words.buffer).set(stream);
  // read little-endian (as every typed-array upload to WebGPU here), so byte 0 sits low: swap it to the top
  for (let i = 0; i < words.length; i++) {
    const x = words[i]!;
    words[i] = ((x << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
  }
  return words;
}

/** Marks a lookup-table entry the kernel must resolve by walking the LUTs. */
const { SLOW } = DF11_STREAM;

/**
 * The unit's LUT bytes followed by the kernel's two 256-entry tables on the next 8 stream bits, which the
 * kernel pairs up as `multi[x]` (df11_stream.wgsl): `multi[x]` = (count << 28) | (bits << 24) | exponents of
 * the 1 to 3 whole codes x holds (first in the low byte); SLOW where a code is longer than 8 bits or the
 * tables hold no valid code there (the kernel's table walk then decides, and flags bad data); `ends[x]` =
 * where the first and second codes end (bits 0-3 and 4-7; the first code's end is its length, and the last
 * code's end is `bits`), so that a step at a window's end can take only the codes that start before it.
 */
export function withLookupTables(luts: Uint8Array, nTables: number): Uint8Array {
  const lengths = luts.subarray((nTables - 1) * 256, nTables * 256);
  const tables = new Uint32Array(LOOKUP_TABLE_BYTES / 4);
  for (let x = 0; x < 256; x++) {
    let exps = 0;
    let bits = 0;
    let n = 0;
    let ends = 0;
    while (n < 3) {
      const at = (x << bits) & 0xff; // the bits after `bits` are zeros: valid only if the code fits
      const dj = luts[at];
      if (dj >= 240 || lengths[dj] === 0 || bits + lengths[dj] > 8) break;
      // and only if the table agrees for every value of those bits (corrupt tables may not: then the
      // kernel decodes one code at a time, like the CPU decoder)
      if (luts.subarray(at, at + (1 << bits)).some((v) => v !== dj)) break;
      exps |= dj << (8 * n);
      bits += lengths[dj];
      if (n < 2) ends |= bits << (4 * n);
      n++;
    }
    tables[x] = n === 0 ? SLOW : ((n << 28) | (bits << 24) | exps) >>> 0;
    tables[256 + x] = ends;
  }
  const out = new Uint8Array(nTables * 256 + tables.byteLength);
  out.set(luts.subarray(0, nTables * 256));
  out.set(new Uint8Array(tables.buffer), nTables * 256);
  return out;
}

/** Matrix `index` of `unit` decoded into an output buffer at byte `outOffset`. */
export interface MatrixDecode {
  unit: GpuDf11Unit;
  index: number;
  outOffset: number;
}

/** Elements [begin, end) of `unit` decoded into an output buffer at byte `outOffset`. */
export interface RangeDecode {
  unit: GpuDf11Unit;
  begin: number;
  end: number;
  outOffset: number;
}

/**
 * The same decodes as ranges, one per run of matrices that lie back to back both in their unit (element
 * order) and in the output (each at the previous one's offset + 2 bytes per element): a whole layer unit
 * whose matrices the output keeps in unit order becomes one range, so one dispatch instead of one per
 * matrix. Ranges come in unit order, then element order.
 */
export function mergeDecodes(decodes: readonly MatrixDecode[]): RangeDecode[] {
  const units = [...new Set(decodes.map((d) => d.unit))];
  const sorted = decodes
    .map((d) => ({ d, m: d.unit.source.matrices[d.index]! }))
    .sort((a, b) => units.indexOf(a.d.unit) - units.indexOf(b.d.unit) || a.m.offset - b.m.offset);
  const ranges: RangeDecode[] = [];
  for (const { d, m } of sorted) {
    const last = ranges.at(-1);
    if (last && last.unit === d.unit && last.end === m.offset && last.outOffset + 2 * (last.end - last.begin) === d.outOffset) {
      last.end = m.offset + m.size;
    } else {
      ranges.push({ unit: d.unit, begin: m.offset, end: m.offset + m.size, outOffset: d.outOffset });
    }
  }
  return ranges;
}

/** Largest block b with outputPositions[b] <= g (the block where element g's code starts). */
export function blockOf(outputPositions: Uint32Array, g: number): number {
  let lo = 0;
  let hi = outputPositions.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (outputPositions[mid] <= g) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** Most blocks any row [offset + r*rowLen, offset + (r+1)*rowLen) touches. */
function maxBlocksPerRow(outputPositions: Uint32Array, offset: number, nRows: number, rowLen: number): number {
  let most = 1;
  for (let r = 0; r < nRows; r++) {
    const begin = offset + r * rowLen;
    most = Math.max(most, blockOf(outputPositions, begin + rowLen - 1) - blockOf(outputPositions, begin) + 1);
  }
  return most;
}

/** Structural checks the kernel relies on (sizes, table count, output_positions bounds). */
function checkGeometry(unit: Df11Unit, maxBinding: number): { nTables: number; n: number; nBytes: number } {
  validateStream(unit); // the CPU decoder's structural checks of the stream, so both accept the same streams
  const corrupt = (what: string) => new Df11Error('corrupt-stream', `unit ${unit.name}: ${what}`);
  const n = unit.signMantissa.length;
  const nBytes = unit.encodedExponent.length;
  const nTables = unit.luts.length / 256;
  const nBlocks = Math.ceil(nBytes / BYTES_PER_BLOCK);
  if (!Number.isInteger(nTables) || nTables < 2 || nTables > MAX_TABLES) throw corrupt(`luts of ${unit.luts.length} bytes is not 2..${MAX_TABLES} tables of 256`);
  if (unit.gaps.length < GAP_BYTES_PER_BLOCK * nBlocks) throw corrupt(`gaps has ${unit.gaps.length} bytes, ${nBlocks} blocks need ${GAP_BYTES_PER_BLOCK * nBlocks}`);
  if (unit.outputPositions.length !== nBlocks + 1) throw corrupt(`output_positions has ${unit.outputPositions.length} entries, expected ${nBlocks + 1}`);
  if (n > 0 && nBytes === 0) throw corrupt('empty stream for a non-empty unit');
  if (unit.outputPositions[0] !== 0 || unit.outputPositions[nBlocks] !== n) throw corrupt(`output_positions must run from 0 to ${n}`);
  for (const m of unit.matrices) {
    if (m.offset < 0 || m.offset + m.size > n) throw corrupt(`matrix ${m.name} [${m.offset}, +${m.size}) outside the unit's ${n} elements`);
  }
  for (const [what, bytes] of [['sign_mantissa', n], ['encoded_exponent', nBytes]] as const) {
    if (bytes > maxBinding) throw new Df11Error('gpu-limits', `unit ${unit.name}: ${what} of ${bytes} bytes exceeds this device's ${maxBinding}-byte storage binding`);
  }
  return { nTables, n, nBytes };
}
