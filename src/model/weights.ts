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
 * compressed on load (official unit pattern, src/format encoder).
 */
import { Df11Error } from '../errors.ts';
import { defaultPattern, layerNormNames, linearShapes, projectionLinears, type LayerLinear } from '../format/config.ts';
import { planUnits } from '../format/compress-model.ts';
import { encodeUnit } from '../format/df11-encoder.ts';
import type { Df11Matrix, Df11Unit } from '../format/df11-types.ts';
import type { ModelSpec } from '../format/model-spec.ts';
import type { ModelWeights } from '../format/model-reader.ts';
import { asUint16 } from '../format/safetensors.ts';
import { bf16PairBytes, Df11Decoder, type Df11RowJob, type GpuDf11Unit } from '../gpu/df11-decode.ts';
import type { Gpu } from '../gpu/gpu.ts';
import type { StorageBinding } from '../gpu/kernels/kernel.ts';
import type { MatrixView } from '../gpu/kernels/matmul.ts';

export type WeightMode = 'df11' | 'bf16';

/** Storage bindings of activations and weights are padded to this (vec4 arrays in the kernels). */
const PAD = 16;
const ALIGN = 256;

/**
 * A layer's projections by what they compute (their matrices: projectionLinears in format/config.ts). The
 * matrices of one projection are fused into a single matmul (back to back in memory, concatenated output
 * rows) whenever they can be: every matrix but the last a multiple of 256 bytes, all of them decoded or all
 * resident. Otherwise each is its own part.
 */
export type ProjectionName = keyof ReturnType<typeof projectionLinears>;

/** One matmul of a projection: output rows [rowOffset, rowOffset + view.rows). */
export interface ProjectionPart {
  view: MatrixView;
  /** (view.rows) f32, for q/k/v with attention bias. */
  bias?: GPUBuffer;
  rowOffset: number;
}

export interface LayerWeights {
  inputNorm: GPUBuffer; // (hidden) f32
  postNorm: GPUBuffer; // (hidden) f32, before the MLP
  /** Sandwich norms (gemma3): on the attention output and on the MLP output, before the residual adds.  (hidden) f32 */
  postAttentionNorm?: GPUBuffer;
  postMlpNorm?: GPUBuffer;
  /** Per-head q/k RMSNorm weights (qwen3, gemma3).  (head_dim) f32 */
  qNorm?: GPUBuffer;
  kNorm?: GPUBuffer;
  projections: Record<ProjectionName, ProjectionPart[]>;
}

/** Rows [rowStart, rowStart + view.rows) of the LM head. */
export interface HeadTile {
  rowStart: number;
  view: MatrixView;
}

export interface WeightLoadOptions {
  mode: WeightMode;
  maxTokens: number;
  maxHeadTileRows?: number;
}

export interface WeightMemory {
  weightBytes: number;
  bf16WeightBytes: number;
  transientBytes: number;
}

/** A decode the prepare* calls record: matrix `index` of `unit` into the transient buffer at `outOffset`. */
interface Decode {
  unit: GpuDf11Unit;
  index: number;
  outOffset: number;
}

type Embedding = { kind: 'resident'; table: GPUBuffer } | { kind: 'decoded'; job: Df11RowJob };

export class GpuWeights {
  /** Built by GpuWeights.load. */
  constructor(
    readonly mode: WeightMode,
    readonly spec: ModelSpec,
    readonly layers: readonly LayerWeights[],
    readonly finalNorm: GPUBuffer, // (hidden) f32
    readonly headTiles: readonly HeadTile[],
    /** Embedding rows of the current tokens, filled by prepareEmbedding.  (max_tokens, hidden) BF16 */
    readonly embeddingRows: GPUBuffer,
    /** Where df11 mode decodes one layer's matrices or one head tile.  (transientBytes) BF16 */
    private readonly transient: GPUBuffer | undefined,
    private readonly embedding: Embedding,
    private readonly layerDecodes: readonly Decode[][],
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
    for (const d of this.layerDecodes[i]!) this.decoder!.encodeMatrix(pass, d.unit, d.index, this.transient!, d.outOffset);
  }

  /** Make head tile j's view valid (same contract as prepareLayer). */
  prepareHeadTile(pass: GPUComputePassEncoder, j: number): void {
    const d = this.headDecodes[j];
    if (d) this.decoder!.encodeMatrix(pass, d.unit, d.index, this.transient!, d.outOffset);
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
    if (this.embedding.kind === 'decoded') this.embedding.job.destroy();
    this.decoder?.destroy();
  }

  /**
   * Put `model` on the GPU. `maxTokens` bounds the tokens of one forward call (embedding rows buffer);
   * `maxHeadTileRows` caps the LM head tiles below what the device allows (tests use it to tile small heads).
   */
  static async load(gpu: Gpu, model: ModelWeights, options: WeightLoadOptions): Promise<GpuWeights> {
    const loader = new Loader(gpu, model, options.mode);
    try {
      return await loader.load(options.maxTokens, options.maxHeadTileRows ?? Infinity);
    } catch (e) {
      loader.release();
      throw e;
    }
  }
}

function never(): never {
  throw new Error('unreachable');
}

/** Matrices of one projection stored back to back (a fused part), and where they go. */
interface Group {
  projection: ProjectionName;
  names: string[];
  decoded: boolean;
  /** First output row of the part within its projection. */
  rowOffset: number;
  bytes: number;
  /** Byte offset in the transient buffer (decoded groups). */
  offset: number;
}

/** Where a matrix comes from: a plain BF16 tensor, or matrix `name` of a DF11 unit. */
type Source = { kind: 'tensor'; name: string } | { kind: 'unit'; unit: string; name: string };

/** Builds a GpuWeights; owns everything allocated until it is handed over (released on failure). */
class Loader {
  private readonly spec: ModelSpec;
  private readonly buffers: GPUBuffer[] = [];
  private readonly units: GpuDf11Unit[] = [];
  private decoder: Df11Decoder | undefined;
  /** Unit name → its matrix names, for units the loader compresses itself (BF16 directory in df11 mode). */
  private readonly plan: Map<string, string[]> | undefined;
  /** Bytes of resident buffers (matrices, norms, biases), and what all weights take in BF16. */
  private residentBytes = 0;
  private bf16Bytes = 0;

  constructor(
    private readonly gpu: Gpu,
    private readonly model: ModelWeights,
    private readonly mode: WeightMode,
  ) {
    this.spec = model.spec;
    this.plan = mode === 'df11' && model.format === 'bf16' ? planUnits(model, defaultPattern(model.spec)) : undefined;
  }

  release(): void {
    for (const b of this.buffers) b.destroy();
    for (const u of this.units) u.destroy();
    this.decoder?.destroy();
  }

  async load(maxTokens: number, maxHeadTileRows: number): Promise<GpuWeights> {
    const { spec, gpu } = this;
    const h = spec.hiddenSize;
    if (h % 2 !== 0) throw new Df11Error('unsupported-architecture', `hidden_size ${h} must be even`);
    if (this.mode === 'df11' || this.model.format === 'df11') this.decoder = await Df11Decoder.create(gpu);

    // 1. Where every matrix lives, how the projections group, and the transient layout of each layer's
    //    decoded groups (a group's matrices back to back, groups at 256-byte aligned offsets).
    const decoded = (name: string): boolean => this.mode === 'df11' && this.source(name).kind === 'unit';
    const layerGroups = Array.from({ length: spec.numLayers }, (_, i) => this.groups(i, decoded));
    let transientBytes = 0;
    for (const groups of layerGroups) {
      let at = 0;
      for (const g of groups.filter((x) => x.decoded)) {
        g.offset = at;
        at = align(at + g.bytes, ALIGN);
      }
      transientBytes = Math.max(transientBytes, at);
    }
    const headName = 'lm_head.weight';
    const headDecoded = decoded(headName);
    const rowBytes = h * 2;
    const tileRows = Math.min(this.headTileRows(headDecoded, transientBytes), maxHeadTileRows);
    if (headDecoded) transientBytes = Math.max(transientBytes, align(tileRows * rowBytes, PAD));
    const transient = transientBytes > 0 ? await this.buffer('df11 transient (one layer or one head tile)', transientBytes, false) : undefined;
    if (transient && transientBytes > gpu.maxBindingSize) {
      throw new Df11Error('model-too-large', `one layer's matrices (${transientBytes} bytes) exceed this device's ${gpu.maxBindingSize}-byte storage binding`);
    }

    // 2. DF11 units (resident in df11 mode, decoded once into resident matrices in bf16 mode).
    const headTiles: Array<{ rowStart: number; rows: number }> = [];
    for (let r = 0; r < spec.vocabSize; r += tileRows) headTiles.push({ rowStart: r, rows: Math.min(tileRows, spec.vocabSize - r) });
    const unitsByName = new Map<string, { gpu: GpuDf11Unit; index: Map<string, number> }>();
    const headSource = this.source(headName);
    const embedSource = this.source('model.embed_tokens.weight');
    for (const unitName of this.unitNames()) {
      const unit = await this.readUnit(unitName);
      const extra: Df11Matrix[] = [];
      if (this.mode === 'df11' && headSource.kind === 'unit' && headSource.unit === unitName) {
        // Head tiles as extra ranges of the unit, so each tile decodes on its own.
        const m = unit.matrices.find((x) => x.name === headSource.name)!;
        for (const t of headTiles) extra.push({ name: tileName(m.name, t), shape: [t.rows, h], offset: m.offset + t.rowStart * h, size: t.rows * h });
      }
      const uploaded = await this.decoder!.upload({ ...unit, matrices: [...unit.matrices, ...extra] });
      this.units.push(uploaded);
      unitsByName.set(unitName, { gpu: uploaded, index: new Map([...unit.matrices, ...extra].map((m, i) => [m.name, i])) });
      this.bf16Bytes += unit.signMantissa.length * 2;
    }
    /** Decode of matrix (or head tile) `matrix` of the unit holding weight `name`. */
    const decodeOf = (name: string, outOffset: number, matrix?: string): Decode => {
      const s = this.source(name);
      if (s.kind !== 'unit') never();
      const u = unitsByName.get(s.unit)!;
      return { unit: u.gpu, index: u.index.get(matrix ?? s.name)!, outOffset };
    };

    // 3. Resident matrices: plain BF16 tensors, or (bf16 mode) DF11 matrices decoded once here.
    const fill = async (name: string, buffer: GPUBuffer, offset: number): Promise<void> => {
      const s = this.source(name);
      if (s.kind === 'tensor') {
        const { data } = await this.model.readTensor(s.name, 'BF16');
        gpu.writeBuffer(buffer, offset, data);
        this.bf16Bytes += data.byteLength;
      } else {
        const d = decodeOf(name, offset);
        const encoder = gpu.device.createCommandEncoder();
        this.decoder!.encodeMatrix(encoder, d.unit, d.index, buffer, offset);
        gpu.device.queue.submit([encoder.finish()]);
      }
    };
    const residentCache = new Map<string, GPUBuffer>();
    const resident = async (name: string): Promise<GPUBuffer> => {
      const s = this.source(name);
      const key = s.kind === 'tensor' ? s.name : `${s.unit}/${s.name}`;
      let buffer = residentCache.get(key);
      if (!buffer) {
        buffer = await this.buffer(`bf16 ${key}`, this.matrixBytes(name), true);
        await fill(name, buffer, 0);
        residentCache.set(key, buffer);
      }
      return buffer;
    };

    // 4. Layers.
    const layers: LayerWeights[] = [];
    const layerDecodes: Decode[][] = [];
    for (let i = 0; i < spec.numLayers; i++) {
      const p = `model.layers.${i}`;
      const decodes: Decode[] = [];
      const projections: Record<ProjectionName, ProjectionPart[]> = { qkv: [], o: [], gateUp: [], down: [] };
      for (const g of layerGroups[i]!) {
        let binding: StorageBinding;
        if (g.decoded) {
          binding = { buffer: transient!, offset: g.offset, size: align(g.bytes, PAD) };
          let at = g.offset;
          for (const name of g.names) {
            decodes.push(decodeOf(name, at));
            at += this.matrixBytes(name);
          }
        } else {
          const buffer = await this.buffer(`bf16 ${g.names.join(' + ')}`, g.bytes, true);
          let at = 0;
          for (const name of g.names) {
            await fill(name, buffer, at);
            at += this.matrixBytes(name);
          }
          binding = buffer;
        }
        const rows = g.names.reduce((a, n) => a + this.shape(n)[0], 0);
        const bias = spec.attentionBias && g.projection === 'qkv' ? await this.f32Tensor(g.names.map((n) => n.replace(/\.weight$/, '.bias'))) : undefined;
        projections[g.projection].push({ view: { binding, offset: 0, rows, cols: this.shape(g.names[0]!)[1] }, bias, rowOffset: g.rowOffset });
      }
      const norms = layerNormNames(spec);
      const norm = (name: string | undefined): Promise<GPUBuffer> | undefined => (name ? this.normTensor(`${p}.${name}.weight`) : undefined);
      layers.push({
        inputNorm: await norm(norms.input)!,
        postNorm: await norm(norms.preMlp)!,
        postAttentionNorm: await norm(norms.postAttention),
        postMlpNorm: await norm(norms.postMlp),
        qNorm: spec.qkNorm ? await norm('self_attn.q_norm') : undefined,
        kNorm: spec.qkNorm ? await norm('self_attn.k_norm') : undefined,
        projections,
      });
      layerDecodes.push(decodes);
    }

    // 5. LM head tiles and the embedding.
    const tiles: HeadTile[] = [];
    const headDecodes: (Decode | undefined)[] = [];
    const headBuffer = headDecoded ? undefined : await resident(headName);
    for (const t of headTiles) {
      if (headDecoded) {
        tiles.push({ rowStart: t.rowStart, view: { binding: { buffer: transient!, offset: 0, size: align(t.rows * rowBytes, PAD) }, offset: 0, rows: t.rows, cols: h } });
        headDecodes.push(decodeOf(headName, 0, tileName(headSource.name, t)));
      } else {
        const offset = t.rowStart * rowBytes;
        const size = Math.min(align(t.rows * rowBytes, PAD), headBuffer!.size - offset);
        tiles.push({ rowStart: t.rowStart, view: { binding: { buffer: headBuffer!, offset, size }, offset: 0, rows: t.rows, cols: h } });
        headDecodes.push(undefined);
      }
    }
    const embeddingRows = await this.buffer('embedding rows', Math.max(bf16PairBytes(maxTokens * h), PAD), false);
    let embedding: Embedding;
    if (this.mode === 'df11' && embedSource.kind === 'unit') {
      const u = unitsByName.get(embedSource.unit)!;
      embedding = { kind: 'decoded', job: await this.decoder!.createRowJob(u.gpu, u.index.get(embedSource.name)!, maxTokens) };
    } else {
      embedding = { kind: 'resident', table: await resident('model.embed_tokens.weight') };
    }
    const finalNorm = await this.normTensor('model.norm.weight');
    if (this.mode === 'bf16') {
      // DF11 units were only needed to fill the resident matrices.
      await this.decoder?.checkStatus();
      for (const u of this.units.splice(0)) u.destroy();
    }
    const unitBytes = this.units.reduce((a, u) => a + Object.values(u.buffers).reduce((b, x) => b + x.size, 0), 0);
    return new GpuWeights(
      this.mode,
      spec,
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
      { weightBytes: this.residentBytes + unitBytes, bf16WeightBytes: this.bf16Bytes, transientBytes: transient?.size ?? 0 },
    );
  }

  /** Rows per LM-head tile: one binding's worth (256-byte aligned) when resident, the transient's when decoded. */
  private headTileRows(decoded: boolean, transientBytes: number): number {
    const rowBytes = this.spec.hiddenSize * 2;
    const vocab = this.spec.vocabSize;
    if (decoded) {
      const budget = Math.min(Math.max(transientBytes, 128 * rowBytes), this.gpu.maxBindingSize);
      return Math.max(1, Math.min(vocab, Math.floor(budget / rowBytes)));
    }
    const perBinding = Math.floor(this.gpu.maxBindingSize / rowBytes / 128) * 128;
    if (perBinding === 0) throw new Df11Error('model-too-large', `an LM head row of ${rowBytes} bytes does not fit a storage binding`);
    return Math.min(vocab, perBinding);
  }

  private source(name: string): Source {
    if (this.plan) {
      for (const [unit, names] of this.plan) {
        const resolved = name === 'lm_head.weight' && this.spec.tieWordEmbeddings ? 'model.embed_tokens.weight' : name;
        if (names.includes(resolved)) return { kind: 'unit', unit, name: resolved };
      }
    }
    const loc = this.model.locate(name);
    if (!loc) throw new Df11Error('missing-tensor', `the model has no weight '${name}'`);
    return loc.kind === 'df11' ? { kind: 'unit', unit: loc.unit, name: loc.matrix.name } : { kind: 'tensor', name: loc.name };
  }

  /** DF11 units the forward needs (df11 mode) or that hold matrices to decode at load (bf16 mode). */
  private unitNames(): string[] {
    const names = this.plan ? [...this.plan.keys()] : this.model.unitNames;
    return this.decoder ? names : [];
  }

  private async readUnit(name: string): Promise<Df11Unit> {
    const matrices = this.plan?.get(name);
    if (!matrices) return this.model.readUnit(name);
    const inputs = [];
    for (const m of matrices) {
      const { shape, data } = await this.model.readTensor(m, 'BF16');
      inputs.push({ name: m, shape, bits: asUint16(data) });
    }
    return encodeUnit(name, inputs);
  }

  private shape(name: string): [number, number] {
    const shapes = linearShapes(this.spec);
    if (name === 'model.embed_tokens.weight') return shapes.embed_tokens;
    if (name === 'lm_head.weight') return shapes.lm_head;
    const linear = name.replace(/^model\.layers\.\d+\./, '').replace(/\.weight$/, '');
    if (!(linear in shapes)) never();
    return shapes[linear as LayerLinear];
  }

  private matrixBytes(name: string): number {
    const [rows, cols] = this.shape(name);
    return rows * cols * 2;
  }

  /** An RMSNorm weight as the kernels use it: w, or (1 + w) in f32 for Gemma (as HF computes it). */
  private normTensor(name: string): Promise<GPUBuffer> {
    return this.f32Tensor([name], this.spec.normWeightOffset);
  }

  /** Norms or biases as one f32 buffer, concatenated (BF16 or F32 on disk; BF16 → f32 is exact), plus `add`. */
  private async f32Tensor(names: string[], add = 0): Promise<GPUBuffer> {
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
    const buffer = await this.buffer(`f32 ${names.join(' + ')}`, values.byteLength, true);
    this.gpu.writeBuffer(buffer, 0, values);
    this.bf16Bytes += values.length * 2;
    return buffer;
  }

  /** Layer i's matrices grouped per projection (see PROJECTIONS); offsets in the transient are set later. */
  private groups(i: number, decoded: (name: string) => boolean): Group[] {
    const out: Group[] = [];
    for (const [projection, linears] of Object.entries(projectionLinears(this.spec)) as Array<[ProjectionName, readonly LayerLinear[]]>) {
      const names = linears.map((l) => `model.layers.${i}.${l}.weight`);
      const together =
        names.every((n) => decoded(n) === decoded(names[0]!)) && names.slice(0, -1).every((n) => this.matrixBytes(n) % ALIGN === 0);
      let rowOffset = 0;
      for (const part of together ? [names] : names.map((n) => [n])) {
        out.push({ projection, names: part, decoded: decoded(part[0]!), rowOffset, bytes: part.reduce((a, n) => a + this.matrixBytes(n), 0), offset: 0 });
        rowOffset += part.reduce((a, n) => a + this.shape(n)[0], 0);
      }
    }
    return out;
  }

  private async buffer(label: string, bytes: number, resident: boolean): Promise<GPUBuffer> {
    const buffer = await this.gpu.createBuffer({
      label,
      size: align(Math.max(bytes, PAD), PAD),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
    this.buffers.push(buffer);
    if (resident) this.residentBytes += buffer.size;
    return buffer;
  }
}

function tileName(matrix: string, tile: { rowStart: number; rows: number }): string {
  return `${matrix}[${tile.rowStart}:+${tile.rows}]`;
}

function align(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}
