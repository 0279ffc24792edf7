import { Df11Error } from '../../errors.ts';
import type { Gpu } from '../gpu.ts';
import { BoundKernel, kernelPipeline, MAX_GROUPS_PER_DIM, type KernelPipeline, type StorageBinding } from './kernel.ts';
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

const WG = 256; // attention.wgsl
const MAX_ROWS = 64; // attention.wgsl
const MAX_ACC = 16; // attention.wgsl: qTile <= MAX_ACC * WG
/** Enough workgroups to fill a large GPU: splits are added until a dispatch has about this many. */
export const TARGET_WORKGROUPS = 1024;
/** A split gets at least this many keys, so short contexts are not cut into slivers. */
export const MIN_SPLIT_KEYS = 64;

export function attentionTiling(maxWorkgroupStorageBytes: number): AttentionTiling {
  const t = { qTile: 2048, kvTile: 1024, sTile: 512 };
  if ((t.qTile + t.kvTile + t.sTile + 3 * MAX_ROWS) * 4 > maxWorkgroupStorageBytes || t.qTile > MAX_ACC * WG) {
    throw new RangeError(`attention tiles do not fit ${maxWorkgroupStorageBytes} bytes of workgroup memory`);
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
export function attentionScratchBytes(shape: AttentionShape, tiling: AttentionTiling, contextLength: number, maxTokens: number): number {
  let most = 16;
  for (let tokens = 1; tokens <= Math.min(maxTokens, contextLength); tokens++) {
    const splits = splitBound(shape, blocking(shape, tiling, tokens), contextLength);
    if (splits > 1) most = Math.max(most, shape.numHeads * tokens * splits * (2 + shape.headDim) * 4);
  }
  return most;
}

/** Causal (optionally sliding-window) GQA attention of new query tokens over one layer's KV cache. shaders/attention.wgsl */
export class AttentionKernel {
  private constructor(
    private readonly gpu: Gpu,
    private readonly main: KernelPipeline,
    private readonly combine: KernelPipeline,
    readonly kvDtype: KvDtype,
    readonly tiling: AttentionTiling,
  ) {}

  static async create(gpu: Gpu, kvDtype: KvDtype): Promise<AttentionKernel> {
    const tiling = attentionTiling(gpu.limits.maxComputeWorkgroupStorageSize);
    const [main, combine] = await Promise.all([
      kernelPipeline(gpu, 'attention', { KV_F16: kvDtype === 'f16' ? 1 : 0, Q_TILE: tiling.qTile, KV_TILE: tiling.kvTile, S_TILE: tiling.sTile }),
      kernelPipeline(gpu, 'attention_combine'),
    ]);
    return new AttentionKernel(gpu, main, combine, kvDtype, tiling);
  }

  /**
   * q: (n_tokens, n_heads, head_dim) f32; kCache, vCache: (n_kv_heads, max_seq, head_dim) in kvDtype;
   * out: (n_tokens, n_heads * head_dim) f32; scratch: attentionScratchBytes(...) bytes, may be shared by calls.
   */
  async bind(q: StorageBinding, kCache: StorageBinding, vCache: StorageBinding, out: StorageBinding, scratch: StorageBinding): Promise<AttentionCall> {
    const [main, combine] = await Promise.all([
      BoundKernel.create(this.gpu, this.main, [q, kCache, vCache, out, scratch]),
      BoundKernel.create(this.gpu, this.combine, [scratch, out]),
    ]);
    return new AttentionCall(main, combine, this.tiling, this.kvDtype, scratch.size);
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
    private readonly tiling: AttentionTiling,
    private readonly kvDtype: KvDtype,
    private readonly scratchBytes: number,
  ) {}

  encode(pass: GPUComputePassEncoder, a: AttentionArgs): void {
    const window = a.window ?? 0;
    if (a.headDim > MAX_HEAD_DIM) throw new Df11Error('unsupported-architecture', `head_dim ${a.headDim} exceeds ${MAX_HEAD_DIM}`);
    if (this.kvDtype === 'f16' && a.headDim % 2 !== 0) throw new Df11Error('unsupported-architecture', `an f16 KV cache needs an even head_dim, got ${a.headDim}`);
    if (a.heads % a.kvHeads !== 0) throw new RangeError('attention: heads must be a multiple of kv heads');
    if (a.pos0 + a.tokens > a.maxSeq) throw new Df11Error('context-overflow', `attention past the cache (${a.pos0 + a.tokens} > ${a.maxSeq})`);
    if (!Number.isInteger(window) || window < 0) throw new RangeError(`attention: window ${window} is not a non-negative integer`);
    const shape = { numHeads: a.heads, numKvHeads: a.kvHeads, headDim: a.headDim };
    const plan = attentionPlan(shape, this.tiling, a.tokens, a.pos0, window);
    if (plan.rowBlocks > MAX_GROUPS_PER_DIM || a.kvHeads > MAX_GROUPS_PER_DIM || a.heads * a.tokens > MAX_GROUPS_PER_DIM) {
      throw new RangeError('attention: too many heads or tokens for one dispatch');
    }
    const group = a.heads / a.kvHeads;
    if (plan.splits > 1 && a.heads * a.tokens * plan.splits * (2 + a.headDim) * 4 > this.scratchBytes) {
      throw new RangeError(`attention: the scratch buffer (${this.scratchBytes} bytes) is smaller than attentionScratchBytes() for this context`);
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
        scale: a.scale ?? 1 / Math.sqrt(a.headDim),
      },
      [plan.splits, plan.rowBlocks, a.kvHeads],
    );
    if (plan.splits > 1) {
      this.combine.encode(pass, { n_heads: a.heads, group, head_dim: a.headDim, n_tokens: a.tokens, n_splits: plan.splits }, [a.heads * a.tokens, 1, 1]);
    }
  }

  destroy(): void {
    this.main.destroy();
    this.combine.destroy();
  }
}
