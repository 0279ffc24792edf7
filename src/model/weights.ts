/**
 * The model's weights on the GPU: one type, two encodings behind it.
 *
 * - bf16: every matrix is a resident BF16 buffer; the prepare* calls only gather embedding rows.
 * - df11: DF11 units stay resident (compressed); `prepareLayer(i)` decodes layer i's matrices into ONE
 *   transient buffer shared by all layers (sized for the largest), `prepareHeadTile(j)` decodes a vocabulary
 *   tile of the LM head into the same buffer, and `prepareEmbedding` row-decodes only the tokens' rows.
 *
 * Either way the forward sees fixed matrix views (bound once, grouped per projection) and calls the same
 * prepare* methods; it never branches on the encoding. Matrices a DF11 directory stores uncompressed stay resident in df11
 * mode; in bf16 mode a DF11 directory is decoded once at load. A BF16 directory in df11 mode is
 * compressed on load (src/format/compress-on-load.ts presents it as DF11 units).
 *
 * Layer residency (layout option `resident`): df11 mode decodes the layers (and head) the dial keeps
 * resident once at load, like bf16 mode does for all. A DF11 unit with no matrix left to decode per step
 * (layout.keepsUnit) is uploaded only while its matrices are filled and freed right after, one such unit at
 * a time: the load never holds more than the layout plus one unit.
 */
import { Df11Error } from '../errors.ts';
import { compressOnLoad } from '../format/compress-on-load.ts';
import { layerLinears, layerNormNames } from '../format/config.ts';
import type { Df11Matrix } from '../format/df11-types.ts';
import type { ModelSpec } from '../format/model-spec.ts';
import type { ModelWeights } from '../format/model-reader.ts';
import { asUint16 } from '../format/safetensors.ts';
import { Df11Decoder, mergeDecodes, unitLengths, uploadedUnitBytes, type Df11RangeJob, type Df11RowJob, type GpuDf11Unit, type MatrixDecode } from '../gpu/df11-decode.ts';
import type { Gpu } from '../gpu/gpu.ts';
import type { StorageBinding } from '../gpu/kernels/kernel.ts';
import type { MatrixView } from '../gpu/kernels/matmul.ts';
import {
  EMBED,
  HEAD,
  LINEAR_ATTENTION_PARAMETERS,
  memoryLayout,
  smallKey,
  STORAGE_PAD,
  type BufferLayout,
  type LayoutOptions,
  type MemoryLayout,
  type ProjectionName,
  type WeightMode,
} from './layout.ts';

/** One matmul of a projection: output rows [rowOffset, rowOffset + view.rows). */
export interface ProjectionPart {
  view: MatrixView;
  /** (view.rows) f32, for q/k/v with attention bias. */
  bias?: GPUBuffer;
  rowOffset: number;
  /**
   * df11 mode, parts decoded per step: the DF11 matrices behind the view, in row order (`view` holds them
   * only after prepareLayer). A fused decode + GEMV (src/gpu/kernels/df11-gemv.ts) reads them directly.
   */
  df11?: ReadonlyArray<{ unit: GpuDf11Unit; index: number; rows: number }>;
}

export interface LayerWeights {
  inputNorm: GPUBuffer; // (hidden) f32
  postNorm: GPUBuffer; // (hidden) f32, before the MLP
  /** Sandwich norms (gemma3): on the attention output and on the MLP output, before the residual adds.  (hidden) f32 */
  postAttentionNorm?: GPUBuffer;
  postMlpNorm?: GPUBuffer;
  /** Per-head q/k RMSNorm weights (qwen3, gemma3, qwen3_5 attention layers).  (head_dim) f32 */
  qNorm?: GPUBuffer;
  kNorm?: GPUBuffer;
  /** A Gated DeltaNet layer's (mixer 'linear') other parameters, f32. */
  linear?: LinearAttentionWeights;
  projections: Record<ProjectionName, ProjectionPart[]>;
}

export interface LinearAttentionWeights {
  conv: GPUBuffer; // (conv channels, kernel) depthwise conv1d weight
  aLog: GPUBuffer; // (value heads) A_log
  dtBias: GPUBuffer; // (value heads)
  norm: GPUBuffer; // (value head dim) gated RMSNorm weight, plain w (not 1 + w)
}

/** Rows [rowStart, rowStart + view.rows) of the LM head. */
export interface HeadTile {
  rowStart: number;
  view: MatrixView;
  /** df11 mode, a head decoded per step: the tile as a matrix of its DF11 unit (`view` holds it after prepareHeadTile). */
  df11?: { unit: GpuDf11Unit; index: number };
}

/** The layout inputs a caller chooses; the device limit, plain weights and real unit sizes come from the load. */
export type WeightLoadOptions = Omit<LayoutOptions, 'maxBindingBytes' | 'plainWeights' | 'units'> & {
  /** Called as each DF11 unit first reaches the GPU (kept, or to be decoded once): units done, of all. */
  onUnitUploaded?: (done: number, total: number, unit: string) => void;
};

/** Bytes of the buffers GpuWeights holds (sizes as allocated). */
export interface WeightMemory {
  weightBytes: number;
  bf16WeightBytes: number;
  transientBytes: number;
  /** The embedding rows of one forward step (an activation, but gathered here). */
  embeddingRowsBytes: number;
}

/** A decode the prepare* calls record: matrix `index` of `unit` into the transient buffer at `outOffset`. */
type Decode = MatrixDecode;

/** A layer's decodes as recorded: runs of matrices back to back in their unit and the transient buffer, one range each. */
interface RangeDecodeJob {
  job: Df11RangeJob;
  outOffset: number;
}

type Embedding = { kind: 'resident'; table: GPUBuffer } | { kind: 'decoded'; job: Df11RowJob };

export class GpuWeights {
  /** Built by GpuWeights.load. */
  constructor(
    readonly mode: WeightMode,
    readonly spec: ModelSpec,
    /** Every buffer of the model (these weights, the forward's activations, the KV cache). */
    readonly layout: MemoryLayout,
    readonly layers: readonly LayerWeights[],
    readonly finalNorm: GPUBuffer, // (hidden) f32
    readonly headTiles: readonly HeadTile[],
    /** Embedding rows of the current tokens, filled by prepareEmbedding.  (max_tokens, hidden) BF16 */
    readonly embeddingRows: GPUBuffer,
    /** Where df11 mode decodes one layer's matrices or one head tile.  (transientBytes) BF16 */
    private readonly transient: GPUBuffer | undefined,
    private readonly embedding: Embedding,
    private readonly layerDecodes: readonly RangeDecodeJob[][],
    private readonly headDecodes: readonly (Decode | undefined)[],
    private readonly decoder: Df11Decoder | undefined,
    private readonly owned: { buffers: GPUBuffer[]; units: GpuDf11Unit[] },
    private readonly bytes: WeightMemory,
  ) {}

  /** Gather the rows of `ids` into `embeddingRows`. */
  prepareEmbedding(encoder: GPUCommandEncoder, ids: Uint32Array): void {
    const rowBytes = this.spec.hiddenSize * 2;
    for (const id of ids) {
      if (id >= this.spec.vocabSize) throw new Df11Error('bad-request', `token id ${id} is outside the vocabulary (${this.spec.vocabSize})`);
    }
    if (this.embedding.kind === 'decoded') {
      this.embedding.job.setTokens(ids);
      this.decoder!.encodeRows(encoder, this.embedding.job, this.embeddingRows);
    } else {
      for (let t = 0; t < ids.length; t++) {
        encoder.copyBufferToBuffer(this.embedding.table, ids[t]! * rowBytes, this.embeddingRows, t * rowBytes, rowBytes);
      }
    }
  }

  /**
   * Make layer i's matrix views valid (decode them into the transient buffer in df11 mode). Recorded into
   * the compute pass that then runs the layer: dispatches of a pass see the writes of earlier ones.
   */
  prepareLayer(pass: GPUComputePassEncoder, i: number): void {
    for (const d of this.layerDecodes[i]!) this.decoder!.encodeRange(pass, d.job, this.transient!, d.outOffset);
  }

  /** Make head tile j's view valid (same contract as prepareLayer). */
  prepareHeadTile(pass: GPUComputePassEncoder, j: number): void {
    const d = this.headDecodes[j];
    if (d) this.decoder!.encodeMatrix(pass, d.unit, d.index, this.transient!, d.outOffset);
  }

  /** The decoder of the DF11 units (absent when no unit is on the GPU): kernels reading units share its status word. */
  get df11Decoder(): Df11Decoder | undefined {
    return this.decoder;
  }

  /** Throws Df11Error('corrupt-stream') if any DF11 decode so far met corrupt data (a GPU readback). */
  async checkDecodes(): Promise<void> {
    await this.decoder?.checkStatus();
  }

  memory(): WeightMemory {
    return { ...this.bytes };
  }

  destroy(): void {
    for (const b of this.owned.buffers) b.destroy();
    for (const u of this.owned.units) u.destroy();
    for (const d of this.layerDecodes.flat()) d.job.destroy();
    if (this.embedding.kind === 'decoded') this.embedding.job.destroy();
    this.decoder?.destroy();
  }

  /**
   * Put `model` on the GPU, every buffer sized by its memory layout (`this.layout`, which also sizes the
   * forward's activations and KV cache for `options.contextLength`).
   */
  static async load(gpu: Gpu, model: ModelWeights, options: WeightLoadOptions): Promise<GpuWeights> {
    const loader = new Loader(gpu, model, options);
    try {
      return await loader.load();
    } catch (e) {
      loader.release();
      throw e;
    }
  }
}

function never(): never {
  throw new Error('unreachable');
}

/** A DF11 unit on the GPU, and the index of each of its matrices (and head tiles) by name. */
interface UploadedUnit {
  gpu: GpuDf11Unit;
  index: Map<string, number>;
}

/** Where a matrix comes from: a plain BF16 tensor, or matrix `name` of a DF11 unit. */
type Source = { kind: 'tensor'; name: string } | { kind: 'unit'; unit: string; name: string };

/** Builds a GpuWeights; owns everything allocated until it is handed over (released on failure). */
class Loader {
  private readonly spec: ModelSpec;
  private readonly mode: WeightMode;
  private readonly buffers: GPUBuffer[] = [];
  private readonly units: GpuDf11Unit[] = [];
  private decoder: Df11Decoder | undefined;
  /** The model as read: a BF16 directory in df11 mode is presented as DF11 units (encoded as they are read). */
  private readonly model: ModelWeights;
  /** Bytes of resident buffers (matrices, norms, biases), and what all weights take in BF16. */
  private residentBytes = 0;
  private bf16Bytes = 0;
  /** Units whose BF16 bytes bf16Bytes holds. */
  private readonly counted = new Set<string>();
  /** The one unit uploaded only to fill resident matrices (see fill in load). */
  private scratch: { name: string; unit: UploadedUnit } | undefined;

  constructor(
    private readonly gpu: Gpu,
    model: ModelWeights,
    private readonly options: WeightLoadOptions,
  ) {
    this.spec = model.spec;
    this.mode = options.mode;
    this.model = this.mode === 'df11' && model.format === 'bf16' ? compressOnLoad(model) : model;
  }

  release(): void {
    for (const b of this.buffers) b.destroy();
    for (const u of this.units) u.destroy();
    this.scratch?.unit.gpu.destroy();
    this.decoder?.destroy();
  }

  /**
   * Read unit `name` and upload it (with the LM-head tiles as extra ranges when it holds a decoded head,
   * so each tile decodes on its own). Its BF16 bytes count once however often it is uploaded.
   */
  private async upload(name: string, headTiles?: { unit: string; matrix: string; tiles: ReadonlyArray<{ rowStart: number; rows: number }> }): Promise<{ uploaded: UploadedUnit; bytes: number }> {
    const h = this.spec.hiddenSize;
    const unit = await this.model.readUnit(name);
    const extra: Df11Matrix[] = [];
    if (headTiles?.unit === name) {
      const m = unit.matrices.find((x) => x.name === headTiles.matrix)!;
      for (const t of headTiles.tiles) extra.push({ name: tileName(m.name, t), shape: [t.rows, h], offset: m.offset + t.rowStart * h, size: t.rows * h });
    }
    const gpu = await this.decoder!.upload({ ...unit, matrices: [...unit.matrices, ...extra] });
    if (!this.counted.has(name)) {
      this.bf16Bytes += unit.signMantissa.length * 2;
      this.counted.add(name);
      this.options.onUnitUploaded?.(this.counted.size, this.unitNames().length, name);
    }
    return { uploaded: { gpu, index: new Map([...unit.matrices, ...extra].map((m, i) => [m.name, i])) }, bytes: uploadedUnitBytes(unitLengths(unit)) };
  }

  async load(): Promise<GpuWeights> {
    const { spec, gpu } = this;
    const h = spec.hiddenSize;
    const layoutOptions: LayoutOptions = { ...this.options, maxBindingBytes: gpu.maxBindingSize, plainWeights: this.plainWeights() };
    // The head tiles do not depend on the unit sizes: this layout places them; the final one adds the real units.
    const tiling = memoryLayout(spec, layoutOptions);
    if (this.mode === 'df11' || this.model.format === 'df11') this.decoder = await Df11Decoder.create(gpu);

    // 1. DF11 units the forward decodes from, resident (df11 mode); the others are uploaded while filled (2.).
    const unitsByName = new Map<string, UploadedUnit>();
    const unitSizes: Array<{ name: string; bytes: number }> = [];
    const headSource = this.source(HEAD);
    const embedSource = this.source(EMBED);
    const headTiles = tiling.head.decoded && headSource.kind === 'unit' ? { unit: headSource.unit, matrix: headSource.name, tiles: tiling.head.tiles } : undefined;
    for (const unitName of this.unitNames().filter((u) => tiling.keepsUnit(u))) {
      const { uploaded, bytes } = await this.upload(unitName, headTiles);
      this.units.push(uploaded.gpu);
      unitSizes.push({ name: unitName, bytes });
      unitsByName.set(unitName, uploaded);
    }
    const layout = this.mode === 'df11' ? memoryLayout(spec, { ...layoutOptions, units: unitSizes }) : tiling;
    const transient = layout.has('transient') ? await this.buffer(layout.buffer('transient'), 'df11 transient (one layer or one head tile)') : undefined;
    /** Decode of matrix (or head tile) `matrix` of the unit holding weight `name`. */
    const decodeOf = (name: string, outOffset: number, matrix?: string): Decode => {
      const s = this.source(name);
      if (s.kind !== 'unit') never();
      const u = unitsByName.get(s.unit)!;
      return { unit: u.gpu, index: u.index.get(matrix ?? s.name)!, outOffset };
    };

    // 2. Resident matrices: plain BF16 tensors, or DF11 matrices decoded once here (bf16 mode; df11 mode:
    //    the layers and head the dial keeps resident) from a unit uploaded for the purpose, freed after.
    let decodedAtLoad = false;
    const fill = async (name: string, buffer: GPUBuffer, offset: number): Promise<void> => {
      const s = this.source(name);
      if (s.kind === 'tensor') {
        const { data } = await this.model.readTensor(s.name, 'BF16');
        gpu.writeBuffer(buffer, offset, data);
        this.bf16Bytes += data.byteLength;
      } else {
        let u = unitsByName.get(s.unit);
        if (!u) {
          if (this.scratch?.name !== s.unit) {
            this.scratch?.unit.gpu.destroy(); // its decodes are submitted: the device frees it after them
            this.scratch = { name: s.unit, unit: (await this.upload(s.unit)).uploaded };
          }
          u = this.scratch.unit;
        }
        const encoder = gpu.device.createCommandEncoder();
        this.decoder!.encodeMatrix(encoder, u.gpu, u.index.get(s.name)!, buffer, offset);
        gpu.submit([encoder.finish()]);
        decodedAtLoad = true;
      }
    };
    const residentCache = new Map<string, GPUBuffer>();
    const resident = async (name: typeof EMBED | typeof HEAD): Promise<GPUBuffer> => {
      const key = name === EMBED || spec.tieWordEmbeddings ? 'matrix.embed' : 'matrix.head';
      let buffer = residentCache.get(key);
      if (!buffer) {
        buffer = await this.buffer(layout.buffer(key), `bf16 ${name}`);
        await fill(name, buffer, 0);
        residentCache.set(key, buffer);
      }
      return buffer;
    };

    // 3. Layers.
    const layers: LayerWeights[] = [];
    const layerDecodes: RangeDecodeJob[][] = [];
    for (let i = 0; i < spec.numLayers; i++) {
      const p = `model.layers.${i}`;
      const decodes: Decode[] = [];
      const projections: Record<ProjectionName, ProjectionPart[]> = { qkv: [], o: [], gateUp: [], down: [] };
      for (const g of layout.layers[i]!) {
        let binding: StorageBinding;
        let df11: ProjectionPart['df11'];
        if (g.decoded) {
          binding = { buffer: transient!, offset: g.offset, size: align(g.bytes, STORAGE_PAD) };
          g.names.forEach((name, k) => decodes.push(decodeOf(name, g.offset + g.matrixOffsets[k]!)));
          const groupDecodes = decodes.slice(-g.names.length);
          df11 = groupDecodes.map((d) => ({ unit: d.unit, index: d.index, rows: d.unit.source.matrices[d.index]!.shape[0]! }));
        } else {
          const buffer = await this.buffer(layout.buffer(g.key!), `bf16 ${g.names.join(' + ')}`);
          for (const [k, name] of g.names.entries()) await fill(name, buffer, g.matrixOffsets[k]!);
          binding = buffer;
        }
        const bias =
          spec.attentionBias && g.projection === 'qkv' ? await this.f32Tensor(layout, g.names.map((n) => n.replace(/\.weight$/, '.bias'))) : undefined;
        projections[g.projection].push({ view: { binding, offset: 0, rows: g.rows, cols: g.cols }, bias, rowOffset: g.rowOffset, df11 });
      }
      const norms = layerNormNames(spec);
      const norm = async (name: string | undefined): Promise<GPUBuffer | undefined> => (name ? this.normTensor(layout, `${p}.${name}.weight`) : undefined);
      const attention = spec.layers[i]!.mixer === 'attention';
      const f32 = (name: string): Promise<GPUBuffer> => this.f32Tensor(layout, [`${p}.${name}`]);
      const [convName, aLogName, dtBiasName] = LINEAR_ATTENTION_PARAMETERS;
      layers.push({
        inputNorm: (await norm(norms.input))!,
        postNorm: (await norm(norms.preMlp))!,
        postAttentionNorm: await norm(norms.postAttention),
        postMlpNorm: await norm(norms.postMlp),
        qNorm: spec.qkNorm && attention ? await norm('self_attn.q_norm') : undefined,
        kNorm: spec.qkNorm && attention ? await norm('self_attn.k_norm') : undefined,
        linear: attention
          ? undefined
          : { conv: await f32(convName), aLog: await f32(aLogName), dtBias: await f32(dtBiasName), norm: await f32('linear_attn.norm.weight') },
        projections,
      });
      const ranges = mergeDecodes(decodes);
      layerDecodes.push(await Promise.all(ranges.map(async (r) => ({ job: await this.decoder!.createRangeJob(r.unit, r.begin, r.end), outOffset: r.outOffset }))));
    }

    // 4. LM head tiles and the embedding.
    const rowBytes = h * 2;
    const tiles: HeadTile[] = [];
    const headDecodes: (Decode | undefined)[] = [];
    const headBuffer = layout.head.decoded ? undefined : await resident(HEAD);
    for (const t of layout.head.tiles) {
      if (layout.head.decoded) {
        const d = decodeOf(HEAD, 0, tileName(headSource.name, t));
        const view = { binding: { buffer: transient!, offset: 0, size: align(t.rows * rowBytes, STORAGE_PAD) }, offset: 0, rows: t.rows, cols: h };
        tiles.push({ rowStart: t.rowStart, view, df11: { unit: d.unit, index: d.index } });
        headDecodes.push(d);
      } else {
        const offset = t.rowStart * rowBytes;
        const size = Math.min(align(t.rows * rowBytes, STORAGE_PAD), headBuffer!.size - offset);
        tiles.push({ rowStart: t.rowStart, view: { binding: { buffer: headBuffer!, offset, size }, offset: 0, rows: t.rows, cols: h } });
        headDecodes.push(undefined);
      }
    }
    const embeddingRows = await this.buffer(layout.buffer('embedding-rows'), 'embedding rows');
    let embedding: Embedding;
    if (layout.embeddingDecoded) {
      if (embedSource.kind !== 'unit') never();
      const u = unitsByName.get(embedSource.unit)!;
      embedding = { kind: 'decoded', job: await this.decoder!.createRowJob(u.gpu, u.index.get(embedSource.name)!, layout.maxTokens) };
    } else {
      embedding = { kind: 'resident', table: await resident(EMBED) };
    }
    const finalNorm = await this.normTensor(layout, 'model.norm.weight');
    this.scratch?.unit.gpu.destroy();
    this.scratch = undefined;
    if (decodedAtLoad) await this.decoder!.checkStatus();
    const unitBytes = this.units.reduce((a, u) => a + Object.values(u.buffers).reduce((b, x) => b + x.size, 0), 0);
    return new GpuWeights(
      this.mode,
      spec,
      layout,
      layers,
      finalNorm,
      tiles,
      embeddingRows,
      transient,
      embedding,
      layerDecodes,
      headDecodes,
      this.decoder,
      { buffers: this.buffers, units: this.units },
      {
        weightBytes: this.residentBytes + unitBytes,
        bf16WeightBytes: this.bf16Bytes,
        transientBytes: transient?.size ?? 0,
        embeddingRowsBytes: embeddingRows.size,
      },
    );
  }

  private source(name: string): Source {
    const loc = this.model.locate(name);
    if (!loc) throw new Df11Error('missing-tensor', `the model has no weight '${name}'`);
    return loc.kind === 'df11' ? { kind: 'unit', unit: loc.unit, name: loc.matrix.name } : { kind: 'tensor', name: loc.name };
  }

  /** Matrices the directory stores as plain BF16 tensors (resident in either mode). */
  private plainWeights(): Set<string> {
    const names = [EMBED, HEAD];
    for (let i = 0; i < this.spec.numLayers; i++) for (const l of layerLinears(this.spec, i)) names.push(`model.layers.${i}.${l}.weight`);
    const plain = new Set<string>();
    for (const n of names) {
      const s = this.source(n);
      if (s.kind === 'tensor') plain.add(s.name);
    }
    return plain;
  }

  /** DF11 units the forward needs (df11 mode) or that hold matrices to decode at load (bf16 mode). */
  private unitNames(): string[] {
    return this.decoder ? this.model.unitNames : [];
  }

  /** An RMSNorm weight as the kernels use it: w, or (1 + w) in f32 for Gemma (as HF computes it). */
  private normTensor(layout: MemoryLayout, name: string): Promise<GPUBuffer> {
    return this.f32Tensor(layout, [name], this.spec.normWeightOffset);
  }

  /** Norms or biases as one f32 buffer, concatenated (BF16 or F32 on disk; BF16 → f32 is exact), plus `add`. */
  private async f32Tensor(layout: MemoryLayout, names: string[], add = 0): Promise<GPUBuffer> {
    const parts: Float32Array[] = [];
    for (const name of names) {
      const t = await this.model.readTensor(name);
      if (t.dtype === 'BF16') parts.push(new Float32Array(Uint32Array.from(asUint16(t.data), (b) => b << 16).buffer));
      else if (t.dtype === 'F32') parts.push(new Float32Array(t.data.slice().buffer));
      else throw new Df11Error('dtype', `${name} is ${t.dtype}; norms and biases must be BF16 or F32`);
    }
    const values = new Float32Array(parts.reduce((a, x) => a + x.length, 0));
    let at = 0;
    for (const x of parts) {
      values.set(x, at);
      at += x.length;
    }
    if (add !== 0) values.forEach((v, i) => (values[i] = v + add));
    const entry = layout.buffer(smallKey(names));
    if (values.byteLength > entry.bytes) throw new Df11Error('safetensors-header', `${names.join(' + ')} holds ${values.length} values, the architecture ${entry.bytes / 4}`);
    const buffer = await this.buffer(entry, `f32 ${names.join(' + ')}`);
    this.gpu.writeBuffer(buffer, 0, values);
    this.bf16Bytes += values.length * 2;
    return buffer;
  }

  /** The buffer of one layout entry; resident weights count towards weightBytes. */
  private async buffer(entry: BufferLayout, label: string): Promise<GPUBuffer> {
    const buffer = await this.gpu.createBuffer({ label, size: entry.bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
    this.buffers.push(buffer);
    if (entry.kind === 'weights') this.residentBytes += buffer.size;
    return buffer;
  }
}

function tileName(matrix: string, tile: { rowStart: number; rows: number }): string {
  return `${matrix}[${tile.rowStart}:+${tile.rows}]`;
}

function align(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}
