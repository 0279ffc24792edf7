/**
 * The memory layout of a loaded model: every GPU buffer the weights, the forward and the KV cache own,
 * with its byte size and the reason it exists. Pure (no GPU): GpuWeights, Forward and KvCache allocate
 * from it by key, and planMemory / `df11 plan` sum it, so the plan is what is allocated, to the byte.
 *
 *   const layout = memoryLayout(spec, { mode: 'df11', contextLength: 2048, chunkTokens: 64, maxBindingBytes });
 *   layout.totalBytes;                 // what generator.memory() will report
 *   layout.buffer('act.x').bytes;      // one buffer by key
 *
 * Buffers by key (`kind` in brackets):
 *   unit.<name>              [weights]    a DF11 unit, resident compressed (df11 mode): its 5 arrays, 4-byte padded
 *   matrix.<i>.<projection>  [weights]    a layer projection group kept as resident BF16 (bf16 mode, or a matrix
 *   matrix.<i>.<projection>.<part>        the directory stores uncompressed); groups fuse q|k|v and gate|up
 *   matrix.embed, matrix.head [weights]   resident BF16 embedding / untied LM head (a tied head shares matrix.embed)
 *   small.<tensor names>     [weights]    norms (Gemma's sandwich norms: 4 per layer) and q/k/v biases as f32
 *   transient                [transient]  df11 mode: the largest layer's decoded groups (256-byte aligned), or one LM-head tile
 *   embedding-rows           [activation] BF16 rows of the tokens of one forward step
 *   act.<name>               [activation] f32 activations of one chunk (act.ob with sandwich norms), the logits,
 *                                         the RoPE tables (one buffer, back to back: `rope`), the readback
 *   kv.k.<i>, kv.v.<i>       [kv]         attention layer i's K and V cache (n_kv_heads, context, head_dim)
 *   state.conv.<i>           [activation] Gated DeltaNet layer i's conv state: the last kernel − 1 inputs, f32
 *   state.delta.<i>          [activation] Gated DeltaNet layer i's recurrent state (value_heads, key_dim, value_dim), f32:
 *                                         fixed size, whatever the context (so it is not in kv, which grows with it)
 *
 * Not listed (and not in generator.memory()): uniform parameter buffers of the kernels and of the DF11
 * decoder (256 bytes per dispatch slot), the decoder's 8-byte status word, the embedding row job's token
 * ids (4 · chunk bytes), in bf16 mode the DF11 units a DF11 directory holds while it is decoded at load, and
 * with ForwardOptions.fusedDecode the fused GEMV's partial sums (4 · (rows + blocks) of the largest matrix
 * decoded per step: about 75 KiB for an 8B layer).
 *
 * To add a buffer: push one more `add(key, kind, bytes, reason)` in the section it belongs to, then allocate
 * it where it is used with `layout.buffer(key).bytes`; the plan and the byte-equality test follow by
 * themselves. Options that later change sizes (an f16 KV cache, a second transient buffer, some layers kept
 * resident in BF16) are inputs here: `kvDtype`, `resident`, and the `decoded(name)` rule below.
 *
 * Layer residency (df11 mode), the memory/speed dial: `resident` keeps some decoded matrices as resident
 * BF16 instead, decoded once at load from their DF11 unit; a unit whose matrices are all resident is freed
 * after that (it is not listed), so a resident layer costs its BF16 bytes only. The dial turns in this order:
 * layers 0, 1, ..., L-1, then the LM head (see Residency). With nothing decoded per step, no transient buffer.
 */
import { Df11Error } from '../errors.ts';
import { layerLinears, layerNormNames, linearAttentionDims, linearShapes, parameterShapes, projectionLinears, type LayerLinear } from '../format/config.ts';
import type { ModelSpec, RopeSpec } from '../format/model-spec.ts';
import { bf16PairBytes } from '../gpu/df11-decode.ts';
import { attentionScratchBytes, attentionTiling } from '../gpu/kernels/attention.ts';
import { KV_DTYPE_BYTES, type KvDtype } from '../gpu/kernels/kv-dtype.ts';

/** How matrices are resident: DF11 units decoded per layer, or plain BF16. */
export type WeightMode = 'df11' | 'bf16';

/** Tokens per prefill chunk (one forward step) unless the caller says otherwise. */
export const DEFAULT_CHUNK_TOKENS = 64;
/** Tokens per prefill chunk on GPUs (see defaultChunkTokens in generator.ts). */
export const GPU_CHUNK_TOKENS = 512;

/** Storage bindings of activations and weights are padded to this (vec4 arrays in the kernels). */
export const STORAGE_PAD = 16;
/**
 * Decoded matrices sit at offsets that are multiples of this in the transient buffer, and RoPE tables in
 * act.ropeCosSin (binding offset alignment).
 */
export const GROUP_ALIGN = 256;

const F32 = 4;
const BF16 = 2;

/**
 * Which matrices df11 mode keeps resident in BF16 (the memory/speed dial): layers 0..layers-1, and the LM
 * head when `head` (a tied head is the embedding table: both become the one resident table).
 *
 * Order (the planner fills it in this order): layers first, then the head. Every step costs the same bytes
 * per unit of speed: a matrix resident in BF16 costs about 0.32 x its BF16 bytes more than its DF11 unit
 * and saves decoding exactly those BF16 bytes every token, head or layer alike. Layers come first because
 * they are the finer steps (the head of a 128k vocabulary is 2.4 layers of Llama-3.1-8B), and the head last
 * because only once every layer is resident does a resident head also free the transient buffer (the
 * head tiles would otherwise need it). The embedding is never on the dial: df11 mode decodes only the rows
 * of the step's tokens, which costs next to nothing, so a resident table would buy no speed.
 */
export interface Residency {
  layers: number;
  head: boolean;
}

/** Nothing resident beyond what the directory stores uncompressed. */
export const NO_RESIDENCY: Residency = { layers: 0, head: false };

/** Bits per compressed weight for estimates (DF11 lands at 10.8–10.9 on released LLMs). */
export const DF11_ESTIMATE_BITS = 10.9;

export interface LayoutOptions {
  mode: WeightMode;
  /** Positions the KV cache holds. */
  contextLength: number;
  /** Tokens per forward step; the activations hold min(chunkTokens, contextLength). */
  chunkTokens: number;
  /** The device's maxStorageBufferBindingSize (default: unlimited). */
  maxBindingBytes?: number;
  /** Cap on LM-head tile rows (tests use it to tile small heads). */
  maxHeadTileRows?: number;
  kvDtype?: KvDtype;
  /** df11 mode: matrices kept resident in BF16 (default NO_RESIDENCY); ignored in bf16 mode, where all are. */
  resident?: Residency;
  /** Weights (full names) the directory stores as plain BF16 rather than in a DF11 unit; resident in either mode. */
  plainWeights?: ReadonlySet<string>;
  /**
   * DF11 units as uploaded (name, bytes of the 5 arrays; see uploadedUnitBytes). Without them the units of
   * the default pattern are estimated at DF11_ESTIMATE_BITS.
   */
  units?: ReadonlyArray<{ name: string; bytes: number }>;
}

export type BufferKind = 'weights' | 'transient' | 'activation' | 'kv';

export interface BufferLayout {
  key: string;
  kind: BufferKind;
  bytes: number;
  reason: string;
  /** The bytes are the 10.9-bit DF11 estimate, not a real size. */
  estimated?: boolean;
}

/** Matrices of one projection that are stored back to back (a fused part of the matmul). */
export interface GroupLayout {
  projection: ProjectionName;
  names: string[];
  /** Decoded into the transient buffer per step (df11) or resident BF16. */
  decoded: boolean;
  /** First output row of the part within its projection. */
  rowOffset: number;
  rows: number;
  cols: number;
  /** BF16 bytes of the matrices. */
  bytes: number;
  /** Byte offset of each matrix within the group (they are back to back). */
  matrixOffsets: number[];
  /** decoded: byte offset in the transient buffer; resident: key of its buffer. */
  offset: number;
  key?: string;
}

/**
 * A layer's projections by what they compute (their matrices: projectionLinears in format/config.ts; Phi-3
 * stores q|k|v and gate|up as one matrix each). The matrices of one projection are fused into a single
 * matmul (back to back in memory, concatenated output rows) whenever they can be: every matrix but the
 * last a multiple of 256 bytes, all of them decoded or all resident. Otherwise each is its own part.
 */
export type ProjectionName = keyof ReturnType<typeof projectionLinears>;

/** Output rows of layer i's mixer input projection ('qkv'): q [| gate] | k | v, or a Gated DeltaNet's qkv | z | b | a. */
export function mixerInputRows(spec: ModelSpec, layer: number): number {
  const shapes = linearShapes(spec);
  return projectionLinears(spec, layer).qkv.reduce((a, l) => a + shapes[l][0], 0);
}

export const EMBED = 'model.embed_tokens.weight';
export const HEAD = 'lm_head.weight';

export interface MemoryLayout {
  spec: ModelSpec;
  options: Readonly<LayoutOptions>;
  /** Tokens one forward step takes: min(chunkTokens, contextLength). */
  maxTokens: number;
  buffers: readonly BufferLayout[];
  /** Per layer, its projection groups in projectionLinears order (qkv, o, gateUp, down). */
  layers: ReadonlyArray<readonly GroupLayout[]>;
  /** LM head: decoded per tile into the transient buffer, or tiles (views) of the resident head. */
  head: { decoded: boolean; tileRows: number; tiles: ReadonlyArray<{ rowStart: number; rows: number }> };
  embeddingDecoded: boolean;
  /** What is resident in BF16 as laid out: layers without a decoded matrix (the first ones), and the head. */
  resident: Residency;
  /** Per RoPE table (spec.ropes[r]): its binding in act.ropeCosSin, (context, rotary_dim_r / 2, 2) f32. */
  rope: ReadonlyArray<{ offset: number; size: number }>;
  kvDtype: KvDtype;
  /** Sum of every buffer. */
  totalBytes: number;
  /** The buffer of `key`; throws if the layout has none. */
  buffer(key: string): BufferLayout;
  has(key: string): boolean;
  /** Sum of the buffers of one kind. */
  bytesOf(kind: BufferKind): number;
  /**
   * Whether DF11 unit `name` stays resident on the GPU: in df11 mode, unless every matrix it holds (by
   * name: `<unit>.…`) is resident BF16. The loader frees the others once their matrices are filled.
   */
  keepsUnit(name: string): boolean;
}

/** A Gated DeltaNet layer's parameters other than linears and its norm, kept as f32 (under model.layers.<i>). */
export const LINEAR_ATTENTION_PARAMETERS = ['linear_attn.conv1d.weight', 'linear_attn.A_log', 'linear_attn.dt_bias'] as const;

/** Keys of the f32 buffers of small tensors: concatenated names (biases of a fused group are one buffer). */
export function smallKey(names: readonly string[]): string {
  return `small.${names.join('+')}`;
}

export function memoryLayout(spec: ModelSpec, options: LayoutOptions): MemoryLayout {
  const { mode, contextLength: ctx } = options;
  if (!Number.isSafeInteger(ctx) || ctx < 1) throw new Df11Error('bad-request', `context length ${ctx} is not a positive integer`);
  if (!Number.isSafeInteger(options.chunkTokens) || options.chunkTokens < 1) {
    throw new Df11Error('bad-request', `chunk of ${options.chunkTokens} tokens is not a positive integer`);
  }
  if (spec.hiddenSize % 2 !== 0) throw new Df11Error('unsupported-architecture', `hidden_size ${spec.hiddenSize} must be even`);
  const maxBinding = options.maxBindingBytes ?? Number.MAX_SAFE_INTEGER;
  const kvDtype = options.kvDtype ?? 'f32';
  const T = Math.min(options.chunkTokens, ctx);
  const plain = options.plainWeights ?? new Set<string>();
  const { hiddenSize: h, intermediateSize: f, numHeads: nH, headDim: hd, vocabSize: V, numLayers: L } = spec;
  const shapes = linearShapes(spec);
  const shape = (name: string): readonly [number, number] => {
    if (name === EMBED) return shapes.embed_tokens;
    if (name === HEAD) return shapes.lm_head;
    return shapes[name.replace(/^model\.layers\.\d+\./, '').replace(/\.weight$/, '') as LayerLinear];
  };
  const matrixBytes = (name: string): number => shape(name)[0] * shape(name)[1] * BF16;
  const resolve = (name: string): string => (name === HEAD && spec.tieWordEmbeddings ? EMBED : name);
  const resident = options.resident ?? NO_RESIDENCY;
  if (!Number.isSafeInteger(resident.layers) || resident.layers < 0 || resident.layers > L) {
    throw new Df11Error('bad-request', `${resident.layers} resident layers is not a count in 0..${L}`);
  }
  /** Kept resident in BF16 by the dial (see Residency); `name` resolved. */
  const onDial = (name: string): boolean => {
    const layer = /^model\.layers\.(\d+)\./.exec(name);
    if (layer) return Number(layer[1]) < resident.layers;
    return resident.head && (name === HEAD || (name === EMBED && spec.tieWordEmbeddings));
  };
  /** Decoded per step from its DF11 unit (df11 mode), or resident. The one place a residency rule goes. */
  const decoded = (name: string): boolean => mode === 'df11' && !plain.has(resolve(name)) && !onDial(resolve(name));
  /** Every matrix the forward uses, by its own name (a tied head has none). */
  const matrices = [EMBED, ...(spec.tieWordEmbeddings ? [] : [HEAD])];
  for (let i = 0; i < L; i++) for (const l of layerLinears(spec, i)) matrices.push(`model.layers.${i}.${l}.weight`);
  const keepsUnit = (unit: string): boolean => {
    if (mode !== 'df11') return false;
    const held = matrices.filter((m) => m.startsWith(`${unit}.`));
    return held.length === 0 || held.some(decoded);
  };

  const buffers: BufferLayout[] = [];
  const add = (key: string, kind: BufferKind, bytes: number, reason: string, estimated?: boolean): void => {
    buffers.push(estimated ? { key, kind, bytes, reason, estimated } : { key, kind, bytes, reason });
  };
  const storage = (bytes: number): number => align(Math.max(bytes, STORAGE_PAD), STORAGE_PAD);

  // Weights: DF11 units (df11 mode keeps them resident; bf16 mode frees them after decoding once at load).
  if (mode === 'df11') {
    if (options.units) {
      for (const u of options.units) if (keepsUnit(u.name)) add(`unit.${u.name}`, 'weights', u.bytes, 'DF11 unit, resident compressed');
    } else {
      for (const u of defaultUnits(spec)) {
        if (keepsUnit(u.name)) add(`unit.${u.name}`, 'weights', df11EstimateBytes(u.elements), `DF11 unit at ${DF11_ESTIMATE_BITS} bits per weight`, true);
      }
    }
  }

  // Layer projection groups: decoded ones get offsets in the transient buffer, resident ones a buffer each.
  let transientBytes = 0;
  /** What the largest layer would take decoded, residency aside: the LM-head tiles are sized by it. */
  let layerDecodedBytes = 0;
  const layers: GroupLayout[][] = [];
  const normNames = layerNormNames(spec);
  for (let i = 0; i < L; i++) {
    const projections = Object.entries(projectionLinears(spec, i)) as Array<[ProjectionName, readonly LayerLinear[]]>;
    const groups: GroupLayout[] = [];
    let at = 0;
    let atUnlessResident = 0;
    for (const [projection, linears] of projections) {
      const names = linears.map((l) => `model.layers.${i}.${l}.weight`);
      const together = names.every((n) => decoded(n) === decoded(names[0]!)) && names.slice(0, -1).every((n) => matrixBytes(n) % GROUP_ALIGN === 0);
      let rowOffset = 0;
      const parts = together ? [names] : names.map((n) => [n]);
      parts.forEach((part, j) => {
        const rows = part.reduce((a, n) => a + shape(n)[0], 0);
        const bytes = part.reduce((a, n) => a + matrixBytes(n), 0);
        const matrixOffsets = part.map((_, k) => part.slice(0, k).reduce((a, n) => a + matrixBytes(n), 0));
        const group: GroupLayout = { projection, names: part, decoded: decoded(part[0]!), rowOffset, rows, cols: shape(part[0]!)[1], bytes, matrixOffsets, offset: 0 };
        if (!plain.has(part[0]!)) atUnlessResident = align(atUnlessResident + bytes, GROUP_ALIGN);
        if (group.decoded) {
          group.offset = at;
          at = align(at + bytes, GROUP_ALIGN);
        } else {
          group.key = `matrix.${i}.${projection}${parts.length > 1 ? `.${j}` : ''}`;
          add(group.key, 'weights', storage(bytes), `layer ${i} ${projection} as resident BF16`);
        }
        if (spec.attentionBias && projection === 'qkv') {
          add(smallKey(part.map((n) => n.replace(/\.weight$/, '.bias'))), 'weights', storage(F32 * rows), `layer ${i} ${projection} bias, f32`);
        }
        groups.push(group);
        rowOffset += rows;
      });
    }
    transientBytes = Math.max(transientBytes, at);
    layerDecodedBytes = Math.max(layerDecodedBytes, atUnlessResident);
    const p = `model.layers.${i}`;
    // Llama: before attention and before the MLP. Gemma 3 adds norms of the attention and MLP outputs (sandwich).
    const norms: Array<[string | undefined, string]> = [
      [normNames.input, 'input norm'],
      [normNames.postAttention, 'attention output norm (sandwich)'],
      [normNames.preMlp, 'pre-MLP norm'],
      [normNames.postMlp, 'MLP output norm (sandwich)'],
    ];
    const linear = spec.layers[i]!.mixer === 'linear';
    if (spec.qkNorm && !linear) norms.push(['self_attn.q_norm', 'per-head q norm'], ['self_attn.k_norm', 'per-head k norm']);
    if (linear) norms.push(['linear_attn.norm', 'Gated DeltaNet gated RMSNorm weight (value head dim)']);
    for (const [module, what] of norms) {
      if (module === undefined) continue;
      const n = `${p}.${module}.weight`;
      add(smallKey([n]), 'weights', storage(F32 * smallElements(spec, n)), `layer ${i} ${what} weight, f32`);
    }
    if (linear) {
      for (const name of LINEAR_ATTENTION_PARAMETERS) {
        const n = `${p}.${name}`;
        add(smallKey([n]), 'weights', storage(F32 * smallElements(spec, n)), `layer ${i} Gated DeltaNet ${name}, f32`);
      }
    }
    layers.push(groups);
  }

  // LM head tiles: one binding's worth (multiple of 128 rows) when resident, the transient's when decoded.
  const rowBytes = h * BF16;
  const headDecoded = decoded(HEAD);
  let tileRows: number;
  if (headDecoded) {
    const budget = Math.min(Math.max(transientBytes, layerDecodedBytes, 128 * rowBytes), maxBinding);
    tileRows = Math.max(1, Math.min(V, Math.floor(budget / rowBytes)));
  } else {
    const perBinding = Math.floor(maxBinding / rowBytes / 128) * 128;
    if (perBinding === 0) throw new Df11Error('gpu-limits', `an LM head row of ${rowBytes} bytes does not fit a storage binding`);
    tileRows = Math.min(V, perBinding);
  }
  tileRows = Math.min(tileRows, options.maxHeadTileRows ?? Infinity);
  const tiles: Array<{ rowStart: number; rows: number }> = [];
  for (let r = 0; r < V; r += tileRows) tiles.push({ rowStart: r, rows: Math.min(tileRows, V - r) });
  if (headDecoded) transientBytes = Math.max(transientBytes, align(tileRows * rowBytes, STORAGE_PAD));
  if (transientBytes > 0) {
    if (transientBytes > maxBinding) {
      throw new Df11Error('gpu-limits', `one layer's matrices (${transientBytes} bytes) exceed this device's ${maxBinding}-byte storage binding`);
    }
    add('transient', 'transient', storage(transientBytes), 'df11: one layer\'s matrices (or one LM-head tile) decoded to BF16');
  }

  // Embedding table and untied head when resident (a tied resident head is the embedding buffer).
  const embeddingDecoded = decoded(EMBED);
  if (!embeddingDecoded) add('matrix.embed', 'weights', storage(matrixBytes(EMBED)), 'embedding table as resident BF16');
  if (!headDecoded && resolve(HEAD) === HEAD) add('matrix.head', 'weights', storage(matrixBytes(HEAD)), 'LM head as resident BF16');
  add(smallKey(['model.norm.weight']), 'weights', storage(F32 * h), 'final norm weight, f32');

  // Activations of one forward step of T tokens, f32 (see Forward).
  add('embedding-rows', 'activation', storage(bf16PairBytes(T * h)), `BF16 embedding rows of ${T} tokens`);
  // RoPE tables back to back in one buffer, each at a GROUP_ALIGN offset (its own binding): (context, rotary_dim / 2, 2).
  const rope: Array<{ offset: number; size: number }> = [];
  let ropeEnd = 0;
  for (const r of spec.ropes) {
    const offset = align(ropeEnd, GROUP_ALIGN);
    rope.push({ offset, size: storage(F32 * ropeElementsPerPosition(r) * ctx) });
    ropeEnd = offset + rope.at(-1)!.size;
  }
  const la = linearAttentionDims(spec);
  const mixerRows = Math.max(...spec.layers.map((_, i) => mixerInputRows(spec, i)));
  const act: Array<[string, number, string]> = [
    ['x', F32 * T * h, '(T, hidden) residual stream'],
    ['xb', F32 * T * h, '(T, hidden) RMSNorm output'],
    ['qkv', F32 * T * mixerRows, '(T, mixer input rows) q [| gate] | k | v, or a Gated DeltaNet\'s qkv | z | b | a'],
    ['qr', F32 * T * nH * hd, '(T, n_heads, head_dim) queries after RoPE'],
    ['att', F32 * T * Math.max(nH * hd, la.valueDim), '(T, n_heads head_dim) attention output, or (T, value dim) a Gated DeltaNet\'s'],
  ];
  if (la.convDim > 0) act.push(['conv', F32 * T * la.convDim, '(T, conv channels) Gated DeltaNet q | k | v after the causal conv1d and SiLU']);
  if (spec.sandwichNorms) act.push(['ob', F32 * T * h, '(T, hidden) o or down projection before its sandwich post-norm']);
  act.push(
    ['gateUp', F32 * T * 2 * f, '(T, 2 intermediate) gate | up'],
    ['xf', F32 * h, '(1, hidden) final-normed last position'],
    ['logits', F32 * V, '(vocab) last position\'s logits'],
    ['ropeCosSin', ropeEnd, `RoPE cos/sin tables of rotary dims ${spec.ropes.map((r) => r.rotaryDim).join(', ')}, (context, rotary_dim / 2, 2) each`],
    ['readback', F32 * V, '(vocab) logits readback, MAP_READ'],
  );
  for (const [name, bytes, reason] of act) add(`act.${name}`, 'activation', storage(bytes), reason);
  // The attention tiles are the same on every device (the limit given here only validates them).
  const scratch = attentionScratchBytes(spec, attentionTiling(Number.POSITIVE_INFINITY), ctx, T);
  add('act.attnPartials', 'activation', storage(scratch), '(n_kv_heads, group T, splits, 2 + head_dim) attention split partials, f32');

  // KV cache: one buffer per layer and kind, so each stays within one storage binding.
  const kvLayer = kvBytesPerLayer(spec, ctx, kvDtype);
  if (kvLayer > maxBinding) {
    throw new Df11Error('gpu-limits', `a KV cache layer of ${ctx} positions (${kvLayer} bytes) exceeds this device's ${maxBinding}-byte storage binding`);
  }
  for (let i = 0; i < L; i++) {
    if (spec.layers[i]!.mixer === 'linear') {
      // A Gated DeltaNet layer keeps fixed-size state instead (see Forward).
      add(`state.conv.${i}`, 'activation', storage(F32 * (la.convKernel - 1) * la.convDim), `layer ${i} conv state (kernel - 1, conv channels) f32`);
      add(`state.delta.${i}`, 'activation', storage(F32 * linearStateElements(spec)), `layer ${i} recurrent state (value_heads, key_head_dim, value_head_dim) f32, independent of context`);
      continue;
    }
    add(`kv.k.${i}`, 'kv', kvLayer, `layer ${i} keys (n_kv_heads, context, head_dim) ${kvDtype}`);
    add(`kv.v.${i}`, 'kv', kvLayer, `layer ${i} values (n_kv_heads, context, head_dim) ${kvDtype}`);
  }

  const byKey = new Map(buffers.map((b) => [b.key, b]));
  if (byKey.size !== buffers.length) throw new Error('memoryLayout: duplicate buffer key');
  return {
    spec,
    options: { ...options },
    maxTokens: T,
    buffers,
    layers,
    head: { decoded: headDecoded, tileRows, tiles },
    embeddingDecoded,
    resident: { layers: countWhile(layers, (groups) => groups.every((g) => !g.decoded)), head: !headDecoded },
    rope,
    kvDtype,
    totalBytes: buffers.reduce((a, b) => a + b.bytes, 0),
    buffer(key) {
      const b = byKey.get(key);
      if (!b) throw new Error(`memory layout has no buffer '${key}'`);
      return b;
    },
    has: (key) => byKey.has(key),
    bytesOf: (kind) => buffers.reduce((a, b) => a + (b.kind === kind ? b.bytes : 0), 0),
    keepsUnit,
  };
}

/** The units of the default DF11 pattern (one per layer, the embedding, an untied head) and their weights. */
export function defaultUnits(spec: ModelSpec): Array<{ name: string; elements: number }> {
  const shapes = linearShapes(spec);
  const units = [{ name: 'model.embed_tokens', elements: shapes.embed_tokens[0] * shapes.embed_tokens[1] }];
  for (let i = 0; i < spec.numLayers; i++) {
    units.push({ name: `model.layers.${i}`, elements: layerLinears(spec, i).reduce((a, l) => a + shapes[l][0] * shapes[l][1], 0) });
  }
  if (!spec.tieWordEmbeddings) units.push({ name: 'lm_head', elements: shapes.lm_head[0] * shapes.lm_head[1] });
  return units;
}

/** How many leading items satisfy `test`. */
function countWhile<T>(items: readonly T[], test: (item: T) => boolean): number {
  const n = items.findIndex((x) => !test(x));
  return n < 0 ? items.length : n;
}

/** Bytes of one layer's K (or V) cache. */
export function kvBytesPerLayer(spec: ModelSpec, contextLength: number, kvDtype: KvDtype = 'f32'): number {
  return spec.numKvHeads * contextLength * spec.headDim * KV_DTYPE_BYTES[kvDtype];
}

/**
 * Bytes that grow with each position of context: the K and V cache of every attention layer (sliding-window
 * layers too: the cache is not a ring buffer yet; Gated DeltaNet layers have none) and a cos/sin row of
 * every RoPE table (before padding).
 */
export function bytesPerPosition(spec: ModelSpec, kvDtype: KvDtype = 'f32'): { kv: number; rope: number } {
  const attentionLayers = spec.layers.filter((l) => l.mixer === 'attention').length;
  return { kv: 2 * attentionLayers * kvBytesPerLayer(spec, 1, kvDtype), rope: spec.ropes.reduce((a, r) => a + F32 * ropeElementsPerPosition(r), 0) };
}

/** f32 values of one Gated DeltaNet layer's recurrent state: (value_heads, key_head_dim, value_head_dim). */
export function linearStateElements(spec: ModelSpec): number {
  const la = spec.linearAttention;
  return la ? la.valueHeads * la.keyHeadDim * la.valueHeadDim : 0;
}

/** f32 values of one position of a RoPE table: rotary_dim / 2 frequencies, cos and sin. */
function ropeElementsPerPosition(r: RopeSpec): number {
  return (r.rotaryDim / 2) * 2;
}

/** DF11 bytes of a unit of `elements` weights at DF11_ESTIMATE_BITS (10.9 = 109/80 bytes per weight). */
export function df11EstimateBytes(elements: number): number {
  return Math.ceil((elements * 109) / 80);
}

function smallElements(spec: ModelSpec, name: string): number {
  const s = parameterShapes(spec).get(name);
  if (!s) throw new Df11Error('missing-tensor', `the architecture has no weight '${name}'`);
  return s.reduce((a, b) => a * b, 1);
}

function align(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}
