import { Df11Error } from '../../errors.ts';
import type { Gpu } from '../gpu.ts';
import { BoundKernel, kernelPipeline, type KernelPipeline, type StorageBinding } from './kernel.ts';
import { ATTENTION, ATTENTION_DECODE } from '../shader-constants.ts';
import type { KvDtype } from './kv-dtype.ts';
import { MAX_HEAD_DIM } from './rope.ts';

/** Heads of the model as attention sees them. */
export interface AttentionShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
}

/**
 * Workgroup-memory tiles of shaders/attention.wgsl, in f32 elements: the block's queries, one K or V tile
 * (rows padded to head_dim + 1), the score tile. The same on every device (they fit the 16 KiB default),
 * so the summation order, and with it the logits, do not depend on the adapter's limits.
 */
export interface AttentionTiling {
  qTile: number;
  kvTile: number;
  sTile: number;
}

const { WG, MAX_ROWS, MAX_ACC } = ATTENTION; // qTile <= MAX_ACC * WG
/** Enough workgroups to fill a large GPU: splits are added until a dispatch has about this many. */
export const TARGET_WORKGROUPS = 1024;
/** A split gets at least this many keys, so short contexts are not cut into slivers. */
export const MIN_SPLIT_KEYS = 64;

/** attention_decode.wgsl: group rows of one token per workgroup, its query slots, its workgroup size. */
const DECODE_MAX_GROUP = ATTENTION_DECODE.MAX_GROUP;
const DECODE_Q_FLOATS = 4 * ATTENTION_DECODE.Q_VEC;
const DECODE_WG = ATTENTION_DECODE.WG;
/** The decode pipeline for groups up to this many rows compiles out the accumulators and row loops past them (fewer registers). */
export const DECODE_SMALL_GROUP = 4;
/** A split's keys are a multiple of this (or of a whole round past one round). */
const DECODE_GRAIN = 32;
/**
 * Decode: splits are added until a dispatch has about this many workgroups. The H200 A/B of the decode
 * kernels (bench/runs/2026-12-02c-h200/attention-variants.jsonl, 256 and 512 at 4k and 16k, 1B and 8B
 * shapes, f32 and f16) was fastest at 256 for this kernel everywhere (1B 16k: f32 34.4 µs, f16 30.2 µs
 * at 256 vs 37.3 / 34.5 at 512).
 */
export const DECODE_TARGET_WORKGROUPS = 256;

/**
 * One decode dispatch of attention_decode.wgsl: (splits, n_kv_heads) workgroups of `chunk` keys, read in
 * rounds of DECODE_WG / lanes keys with `lanes` invocations per key in the score stage.
 */
export interface DecodePlan {
  splits: number;
  chunk: number;
  lanes: number;
}

/**
 * Invocations per key of the score stage for rows of rv 16-byte K words and units 8-byte V units: the
 * fewest (a power of two) that leave each at most K_LOADS words; null where the V stage would need more
 * than V_LOADS units per invocation or a row has more units than the workgroup has invocations.
 */
function decodeLanes(rv: number, units: number): number | null {
  const { K_LOADS, V_LOADS } = ATTENTION_DECODE;
  if (units > DECODE_WG) return null;
  let lanes = 1;
  while (Math.ceil(rv / lanes) > K_LOADS) lanes *= 2;
  const slices = Math.floor(DECODE_WG / units);
  return lanes <= DECODE_WG && Math.ceil(DECODE_WG / lanes / slices) <= V_LOADS ? lanes : null;
}

/**
 * The decode path's plan for one query token at pos0 (window 0 = none), or null where its assumptions
 * fail (group or group * head_dim too large for its workgroup memory, head_dim not a multiple of the
 * 16-byte loads, rows too wide for its loads): the general kernel runs then. Depends on the shape and
 * context only, never on limits. A split's chunk is ceil(span / wanted splits) rounded up to DECODE_GRAIN
 * keys, or to whole rounds past one round.
 */
export function decodePlan(
  shape: AttentionShape,
  kvDtype: KvDtype,
  pos0: number,
  window: number,
  targetWorkgroups = DECODE_TARGET_WORKGROUPS,
): DecodePlan | null {
  const group = shape.numHeads / shape.numKvHeads;
  const perVec = kvDtype === 'f16' ? 8 : 4;
  if (group > DECODE_MAX_GROUP || group * shape.headDim > DECODE_Q_FLOATS) return null;
  if (shape.headDim % perVec !== 0) return null;
  const rv = shape.headDim / perVec;
  const lanes = decodeLanes(rv, 2 * rv);
  if (lanes === null) return null;
  const roundKeys = DECODE_WG / lanes;
  const span = window > 0 ? Math.min(pos0 + 1, window) : pos0 + 1;
  const want = Math.ceil(span / decodeWantSplits(shape, targetWorkgroups));
  const chunk = roundUp(want, want > roundKeys ? roundKeys : DECODE_GRAIN);
  return { splits: Math.ceil(span / chunk), chunk, lanes };
}

function decodeWantSplits(shape: AttentionShape, targetWorkgroups: number): number {
  return Math.max(1, Math.floor(targetWorkgroups / shape.numKvHeads));
}

function roundUp(x: number, m: number): number {
  return Math.ceil(x / m) * m;
}

/** Most splits a decode plan has over at most `span` keys (a chunk is at least DECODE_GRAIN keys and span / wanted splits). */
function decodeSplitBound(shape: AttentionShape, span: number, targetWorkgroups: number): number {
  const group = shape.numHeads / shape.numKvHeads;
  if (group > DECODE_MAX_GROUP) return 1;
  return Math.min(Math.ceil(span / DECODE_GRAIN), decodeWantSplits(shape, targetWorkgroups));
}

export function attentionTiling(maxWorkgroupStorageBytes: number): AttentionTiling {
  const t = { qTile: 2048, kvTile: 1024, sTile: 512 };
  if ((t.qTile + t.kvTile + t.sTile + 3 * MAX_ROWS) * 4 > maxWorkgroupStorageBytes || t.qTile > MAX_ACC * WG) {
    throw new Df11Error('gpu-limits', `attention tiles do not fit ${maxWorkgroupStorageBytes} bytes of workgroup memory`);
  }
  return t;
}

/** One attention dispatch: rows of a KV head in blocks, the keys of a block in splits of `chunk`. */
export interface AttentionPlan {
  rowsPerBlock: number;
  rowBlocks: number;
  tileKeys: number;
  splits: number;
  chunk: number;
}

/**
 * Blocks, tiles and splits for `tokens` queries at positions pos0.. over the cache (window 0 = none):
 * a block holds as many query rows (head × token of one KV head) as the query tile takes; a key tile as
 * many keys as fit; the keys of a block are split until the dispatch has about TARGET_WORKGROUPS
 * workgroups, each split at least MIN_SPLIT_KEYS keys.
 */
export function attentionPlan(shape: AttentionShape, tiling: AttentionTiling, tokens: number, pos0: number, window: number): AttentionPlan {
  const blocks = blocking(shape, tiling, tokens);
  const group = shape.numHeads / shape.numKvHeads;
  // Keys one block sees at most: its tokens' positions, or (window) the window plus its token spread.
  const blockTokens = Math.min(tokens, Math.ceil(blocks.rowsPerBlock / group) + 1);
  const span = Math.min(pos0 + tokens, window > 0 ? window + blockTokens : Infinity);
  const chunk = Math.ceil(Math.ceil(span / splitBound(shape, blocks, span)) / blocks.tileKeys) * blocks.tileKeys;
  return { ...blocks, splits: Math.ceil(span / chunk), chunk };
}

function blocking(shape: AttentionShape, tiling: AttentionTiling, tokens: number): Omit<AttentionPlan, 'splits' | 'chunk'> {
  const rows = (shape.numHeads / shape.numKvHeads) * tokens;
  const rowsPerBlock = Math.min(MAX_ROWS, Math.floor(tiling.qTile / shape.headDim), rows);
  const tileKeys = Math.min(Math.floor(tiling.kvTile / (shape.headDim + 1)), Math.floor(tiling.sTile / rowsPerBlock));
  return { rowsPerBlock, rowBlocks: Math.ceil(rows / rowsPerBlock), tileKeys };
}

/** Most splits for blocks seeing `span` keys (the plan may use fewer after rounding chunks to tiles); grows with span. */
function splitBound(shape: AttentionShape, blocks: Omit<AttentionPlan, 'splits' | 'chunk'>, span: number): number {
  const bySpan = Math.ceil(span / Math.max(MIN_SPLIT_KEYS, blocks.tileKeys));
  return Math.min(bySpan, Math.max(1, Math.floor(TARGET_WORKGROUPS / (blocks.rowBlocks * shape.numKvHeads))));
}

/**
 * Bytes of the split partials buffer (bound once, shared by every layer) for up to `maxTokens` queries a
 * step over a cache of `contextLength` positions: the most any step may need (the split bound grows with
 * the keys seen, which are at most contextLength). 16 when no step splits.
 *   (n_kv_heads, group * tokens, splits, 2 + head_dim) f32
 */
export function attentionScratchBytes(
  shape: AttentionShape,
  tiling: AttentionTiling,
  contextLength: number,
  maxTokens: number,
  decodeTargetWorkgroups = DECODE_TARGET_WORKGROUPS,
): number {
  let most = 16;
  const decodeSplits = decodeSplitBound(shape, contextLength, decodeTargetWorkgroups);
  if (maxTokens >= 1 && decodeSplits > 1) most = shape.numHeads * decodeSplits * (2 + shape.headDim) * 4;
  for (let tokens = 1; tokens <= Math.min(maxTokens, contextLength); tokens++) {
    const splits = splitBound(shape, blocking(shape, tiling, tokens), contextLength);
    if (splits > 1) most = Math.max(most, shape.numHeads * tokens * splits * (2 + shape.headDim) * 4);
  }
  return most;
}

/** Storage buffers of shaders/attention.wgsl and attention_decode.wgsl. */
const ATTENTION_BUFFERS = ['q', 'k_cache', 'v_cache', 'out', 'partials'] as const;
type AttentionBuffer = (typeof ATTENTION_BUFFERS)[number];

/** Causal (optionally sliding-window) GQA attention of new query tokens over one layer's KV cache. shaders/attention.wgsl */
export class AttentionKernel {
  private constructor(
    private readonly gpu: Gpu,
    private readonly main: KernelPipeline<AttentionBuffer>,
    private readonly combine: KernelPipeline<'partials' | 'out'>,
    /** attention_decode.wgsl for groups up to DECODE_SMALL_GROUP rows and for any group; null where not compiled (see create). */
    private readonly decodeSmall: KernelPipeline<AttentionBuffer> | null,
    private readonly decode: KernelPipeline<AttentionBuffer> | null,
    readonly kvDtype: KvDtype,
    readonly tiling: AttentionTiling,
    readonly decodeTargetWorkgroups: number,
  ) {}

  /**
   * decodeTargetWorkgroups: the decode path's split target (benchmarks sweep it; scratch must be sized for it).
   * decodeGroups: the query heads per KV head of the calls to come (a model has one): only the decode
   * pipelines those groups use are compiled (each takes seconds on a CPU adapter); both when omitted.
   */
  static async create(gpu: Gpu, kvDtype: KvDtype, decodeTargetWorkgroups = DECODE_TARGET_WORKGROUPS, decodeGroups?: readonly number[]): Promise<AttentionKernel> {
    const tiling = attentionTiling(gpu.limits.maxComputeWorkgroupStorageSize);
    const f16 = kvDtype === 'f16' ? 1 : 0;
    const wants = (small: boolean): boolean => decodeGroups === undefined || decodeGroups.some((g) => g <= DECODE_MAX_GROUP && (g <= DECODE_SMALL_GROUP) === small);
    const decodePipeline = (rows: number) => kernelPipeline(gpu, 'attention_decode', ATTENTION_BUFFERS, { KV_F16: f16, ROWS: rows });
    const [main, combine, decodeSmall, decode] = await Promise.all([
      kernelPipeline(gpu, 'attention', ATTENTION_BUFFERS, { KV_F16: f16, Q_TILE: tiling.qTile, KV_TILE: tiling.kvTile, S_TILE: tiling.sTile }),
      kernelPipeline(gpu, 'attention_combine', ['partials', 'out']),
      wants(true) ? decodePipeline(DECODE_SMALL_GROUP) : null,
      wants(false) ? decodePipeline(DECODE_MAX_GROUP) : null,
    ]);
    return new AttentionKernel(gpu, main, combine, decodeSmall, decode, kvDtype, tiling, decodeTargetWorkgroups);
  }

  /**
   * q: (n_tokens, n_heads, head_dim) f32; kCache, vCache: (n_kv_heads, max_seq, head_dim) in kvDtype;
   * out: (n_tokens, n_heads * head_dim) f32; scratch: attentionScratchBytes(...) bytes, may be shared by calls.
   */
  async bind(q: StorageBinding, kCache: StorageBinding, vCache: StorageBinding, out: StorageBinding, scratch: StorageBinding): Promise<AttentionCall> {
    // The decode path reads K as vec4<u32> and V as vec2<u32>: it binds when both caches hold whole 16-byte words.
    const vec4Cache = [kCache, vCache].every((b) => b.size >= 16 && b.size % 16 === 0);
    const buffers = { q, k_cache: kCache, v_cache: vCache, out, partials: scratch };
    const [main, combine, decodeSmall, decode] = await Promise.all([
      BoundKernel.create(this.gpu, this.main, buffers),
      BoundKernel.create(this.gpu, this.combine, { partials: scratch, out }),
      vec4Cache && this.decodeSmall ? BoundKernel.create(this.gpu, this.decodeSmall, buffers) : null,
      vec4Cache && this.decode ? BoundKernel.create(this.gpu, this.decode, buffers) : null,
    ]);
    const decodes = vec4Cache ? { small: decodeSmall, any: decode } : null;
    return new AttentionCall(main, combine, decodes, this.tiling, this.kvDtype, scratch.size, this.decodeTargetWorkgroups);
  }
}

export interface AttentionArgs {
  tokens: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  pos0: number;
  maxSeq: number;
  /** Softmax scale of q·k (default 1 / sqrt(headDim)). */
  scale?: number;
  /** Sliding window: a query at position p sees keys max(0, p - window + 1)..p; 0 = none. */
  window?: number;
}

export class AttentionCall {
  constructor(
    private readonly main: BoundKernel,
    private readonly combine: BoundKernel,
    /**
     * attention_decode.wgsl for groups up to DECODE_SMALL_GROUP rows and for any group; null when the caches are
     * not whole vec4s, a variant null when the kernel was created without it (decodeGroups).
     */
    private readonly decode: { small: BoundKernel | null; any: BoundKernel | null } | null,
    private readonly tiling: AttentionTiling,
    private readonly kvDtype: KvDtype,
    private readonly scratchBytes: number,
    private readonly decodeTargetWorkgroups: number,
  ) {}

  encode(pass: GPUComputePassEncoder, a: AttentionArgs): void {
    const window = a.window ?? 0;
    const scale = a.scale ?? 1 / Math.sqrt(a.headDim);
    if (a.headDim > MAX_HEAD_DIM) throw new Df11Error('unsupported-architecture', `head_dim ${a.headDim} exceeds ${MAX_HEAD_DIM}`);
    if (this.kvDtype === 'f16' && a.headDim % 2 !== 0) throw new Df11Error('unsupported-architecture', `an f16 KV cache needs an even head_dim, got ${a.headDim}`);
    if (a.heads % a.kvHeads !== 0) throw new Df11Error('unsupported-architecture', `attention: ${a.heads} heads are not a multiple of ${a.kvHeads} kv heads`);
    if (a.pos0 + a.tokens > a.maxSeq) throw new Df11Error('context-overflow', `attention past the cache (${a.pos0 + a.tokens} > ${a.maxSeq})`);
    if (!Number.isInteger(window) || window < 0) throw new Df11Error('bad-request', `attention: window ${window} is not a non-negative integer`);
    const shape = { numHeads: a.heads, numKvHeads: a.kvHeads, headDim: a.headDim };
    const decode = this.decodePlanFor(a);
    if (decode !== null && this.decode !== null) {
      const group = a.heads / a.kvHeads;
      const variant = group <= DECODE_SMALL_GROUP ? this.decode.small : this.decode.any;
      if (variant === null) throw new Df11Error('internal', `attention: no decode pipeline for groups of ${group} (not in AttentionKernel.create's decodeGroups)`);
      this.encodeDecode(pass, variant, a, decode, window, scale);
      return;
    }
    const plan = attentionPlan(shape, this.tiling, a.tokens, a.pos0, window);
    const group = a.heads / a.kvHeads;
    if (plan.splits > 1 && a.heads * a.tokens * plan.splits * (2 + a.headDim) * 4 > this.scratchBytes) {
      throw new Df11Error('bad-request', `attention: the scratch buffer (${this.scratchBytes} bytes) is smaller than attentionScratchBytes() for this context`);
    }
    this.main.encode(
      pass,
      {
        n_heads: a.heads,
        group,
        head_dim: a.headDim,
        n_tokens: a.tokens,
        pos0: a.pos0,
        max_seq: a.maxSeq,
        window,
        rows_per_block: plan.rowsPerBlock,
        tile_keys: plan.tileKeys,
        n_splits: plan.splits,
        chunk: plan.chunk,
        scale,
      },
      [plan.splits, plan.rowBlocks, a.kvHeads],
    );
    if (plan.splits > 1) {
      this.combine.encode(pass, { n_heads: a.heads, group, head_dim: a.headDim, n_tokens: a.tokens, n_splits: plan.splits }, [a.heads * a.tokens, 1, 1]);
    }
  }

  /** Whether a call with these args runs attention_decode.wgsl (one token, a shape its workgroup fits). */
  usesDecodePath(a: AttentionArgs): boolean {
    return this.decodePlanFor(a) !== null;
  }

  private decodePlanFor(a: AttentionArgs): DecodePlan | null {
    if (a.tokens !== 1 || this.decode === null) return null;
    const shape = { numHeads: a.heads, numKvHeads: a.kvHeads, headDim: a.headDim };
    return decodePlan(shape, this.kvDtype, a.pos0, a.window ?? 0, this.decodeTargetWorkgroups);
  }

  private encodeDecode(pass: GPUComputePassEncoder, decode: BoundKernel, a: AttentionArgs, plan: DecodePlan, window: number, scale: number): void {
    if (plan.splits > 1 && a.heads * plan.splits * (2 + a.headDim) * 4 > this.scratchBytes) {
      throw new Df11Error('bad-request', `attention: the scratch buffer (${this.scratchBytes} bytes) is smaller than attentionScratchBytes() for this context`);
    }
    const group = a.heads / a.kvHeads;
    decode.encode(
      pass,
      {
        n_heads: a.heads,
        group,
        head_dim: a.headDim,
        pos0: a.pos0,
        max_seq: a.maxSeq,
        window,
        n_splits: plan.splits,
        chunk: plan.chunk,
        lanes: plan.lanes,
        scale,
      },
      [plan.splits, a.kvHeads, 1],
    );
    if (plan.splits > 1) {
      this.combine.encode(pass, { n_heads: a.heads, group, head_dim: a.headDim, n_tokens: 1, n_splits: plan.splits }, [a.heads, 1, 1]);
    }
  }

  destroy(): void {
    this.main.destroy();
    this.combine.destroy();
    this.decode?.small?.destroy();
    this.decode?.any?.destroy();
  }
}
