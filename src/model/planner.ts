/**
 * Memory planner: what a model needs on the GPU, and how much context the rest buys. It sums the memory
 * layout (layout.ts): the very buffers GpuWeights, Forward and KvCache allocate, so a plan is to the byte
 * what `generator.memory()` reports for the same context.
 *
 * Per token of context (bytesPerPosition in layout.ts): the K and V cache, 2 · L · nKV · hd · (4 f32 | 2 f16)
 * bytes (sliding-window layers too, the cache is not a ring buffer yet), and a cos/sin row of every RoPE
 * table, 4 · rotary_dim each (Gemma 3 has two: global and local). Everything else (weights, the DF11
 * transient buffer, one chunk of activations, the attention split partials, the logits and their readback)
 * is fixed. DF11 units are the real uploaded sizes when known, else ceil(n · 10.9 / 8).
 *
 * maxContext = min(floor((budget − fixed) / per-token bytes), max_position_embeddings, the largest context
 *              one layer's K (or V) buffer can hold when the adapter's maxStorageBufferBindingSize is given).
 *
 * Layer residency (df11 mode, `residentLayers: 'auto'`, the default), the memory/speed dial: first the
 * context asked for (`contextLength`, else DEFAULT_CONTEXT, both capped as above), then as many layers
 * resident in BF16 as the rest of the budget allows, then the LM head (layout.ts Residency says why in
 * that order). When no context was asked for and everything is resident, the context takes what is left.
 * When not even the context asked for fits at zero residency, it is cut to what fits, nothing resident.
 * A number n of residentLayers is taken as given (the head too when n = numLayers); the context is then
 * what the budget buys, as in bf16 mode.
 */
import { Df11Error } from '../errors.ts';
import type { ModelFiles } from '../format/byte-source.ts';
import { UNIT_PARTS } from '../format/model-reader.ts';
import type { ModelSpec } from '../format/model-spec.ts';
import { SafetensorsFile } from '../format/safetensors.ts';
import { uploadedUnitBytes, type Df11UnitLengths } from '../gpu/df11-decode.ts';
import { KV_DTYPE_BYTES, type KvDtype } from '../gpu/kernels/kv-dtype.ts';
import {
  bytesPerPosition,
  DEFAULT_CHUNK_TOKENS,
  defaultUnits,
  memoryLayout,
  NO_RESIDENCY,
  type LayoutOptions,
  type MemoryLayout,
  type Residency,
  type WeightMode,
} from './layout.ts';

/** WebGPU reports no memory size; without a budget from the caller this is assumed. */
export const DEFAULT_BUDGET_BYTES = 4 * 2 ** 30;

/** Context the planner gives before residency when none is asked for (then capped by the model and the budget). */
export const DEFAULT_CONTEXT = 4096;

export interface PlanOptions {
  mode: WeightMode;
  /** GPU memory for the model, in bytes (default DEFAULT_BUDGET_BYTES). */
  budgetBytes?: number;
  /** Real bytes of every resident DF11 unit as uploaded (replaces the 10.9-bit estimate). */
  units?: LayoutOptions['units'];
  /** Real bytes of all DF11 units together, when only the total is known (shared over the units by weight count). */
  df11WeightBytes?: number;
  /** Tokens per prefill step (default DEFAULT_CHUNK_TOKENS). */
  prefillChunk?: number;
  /** The adapter's maxStorageBufferBindingSize: caps one layer's K or V buffer and the LM-head tiles. */
  maxStorageBindingBytes?: number;
  kvDtype?: KvDtype;
  /** Positions asked for (capped by the model and the budget); default DEFAULT_CONTEXT before residency. */
  contextLength?: number;
  /** df11 mode: layers kept resident in BF16, or 'auto' (default): as many as the budget allows after the context. */
  residentLayers?: number | 'auto';
}

/** What is resident in BF16: layers 0..layers-1 of totalLayers, and the head (all of it in bf16 mode). */
export interface PlannedResidency extends Residency {
  totalLayers: number;
}

export interface MemoryPlan {
  mode: WeightMode;
  budgetBytes: number;
  /** Resident weights = matrixWeightBytes + smallWeightBytes. */
  weightBytes: number;
  matrixWeightBytes: number;
  /** Norm weights and biases, f32. */
  smallWeightBytes: number;
  /** Whether matrixWeightBytes is the 10.9-bit estimate (df11 mode without real sizes). */
  weightsEstimated: boolean;
  transientBytes: number;
  /** One chunk of activations, the embedding rows, the logits and their readback (the RoPE table apart). */
  activationBytes: number;
  prefillChunk: number;
  kvBytesPerToken: number;
  ropeBytesPerToken: number;
  /** The KV cache for maxContext positions. */
  kvCacheBytes: number;
  /** The RoPE table for maxContext positions. */
  ropeTableBytes: number;
  /** Every buffer at maxContext: weights + transient + activations + RoPE table + KV cache. */
  totalBytes: number;
  /** The context planned (what the KV cache holds). */
  maxContext: number;
  /** Context the memory alone allows at the planned residency, before the caps. */
  maxContextByMemory: number;
  maxPositionEmbeddings: number;
  /** 'requested': the context asked for (or DEFAULT_CONTEXT), the rest of the budget went to residency. */
  limitedBy: 'memory' | 'max-position-embeddings' | 'binding-size' | 'requested';
  resident: PlannedResidency;
  /** Budget left after every part. */
  spareBytes: number;
}

/** The plan and the layout it sums (every buffer at maxContext). */
export function planLayout(spec: ModelSpec, options: PlanOptions): { plan: MemoryPlan; layout: MemoryLayout } {
  const budgetBytes = options.budgetBytes ?? DEFAULT_BUDGET_BYTES;
  const prefillChunk = options.prefillChunk ?? DEFAULT_CHUNK_TOKENS;
  if (!Number.isSafeInteger(budgetBytes) || budgetBytes <= 0) throw new Df11Error('bad-request', `budget ${budgetBytes} is not a positive byte count`);
  if (!Number.isSafeInteger(prefillChunk) || prefillChunk <= 0) throw new Df11Error('bad-request', `prefill chunk ${prefillChunk} is not a positive integer`);
  let units = options.units;
  if (options.df11WeightBytes !== undefined) {
    if (!Number.isSafeInteger(options.df11WeightBytes) || options.df11WeightBytes <= 0) {
      throw new Df11Error('bad-request', `df11WeightBytes ${options.df11WeightBytes} is not a positive byte count`);
    }
    // Only the total is known: shared over the default pattern's units in proportion to their weights.
    const shares = defaultUnits(spec);
    const weights = shares.reduce((x, u) => x + u.elements, 0);
    let left = options.df11WeightBytes;
    units = shares.map((u, i) => {
      const bytes = i === shares.length - 1 ? left : Math.floor((options.df11WeightBytes! * u.elements) / weights);
      left -= bytes;
      return { name: u.name, bytes };
    });
  }
  const kvDtype = options.kvDtype ?? 'f32';
  const base = { mode: options.mode, chunkTokens: prefillChunk, maxBindingBytes: options.maxStorageBindingBytes, units, kvDtype };
  const { numLayers, numKvHeads, headDim } = spec;
  const { kv: kvBytesPerToken, rope: ropeBytesPerToken } = bytesPerPosition(spec, kvDtype);
  const perToken = kvBytesPerToken + ropeBytesPerToken;
  const bindingCap =
    options.maxStorageBindingBytes === undefined ? Infinity : Math.floor(options.maxStorageBindingBytes / (numKvHeads * headDim * KV_DTYPE_BYTES[kvDtype]));
  const caps = Math.min(spec.maxPositionEmbeddings, bindingCap);
  const asked = options.contextLength;
  if (asked !== undefined && (!Number.isSafeInteger(asked) || asked < 1)) throw new Df11Error('bad-request', `context length ${asked} is not a positive integer`);
  const dial = options.residentLayers ?? 'auto';
  if (dial !== 'auto' && (!Number.isSafeInteger(dial) || dial < 0 || dial > numLayers)) {
    throw new Df11Error('bad-request', `resident layers ${dial} is not 'auto' or a count in 0..${numLayers}`);
  }
  const full: Residency = { layers: numLayers, head: true };

  /** The largest context whose whole layout at residency `resident` fits the budget (at least a prefill chunk, or a typed error). */
  const capacity = (resident: Residency) => {
    const chosen = { ...base, resident };
    // Everything but the per-token parts, for a full chunk.
    const probe = memoryLayout(spec, { ...chosen, contextLength: prefillChunk });
    const fixed = probe.totalBytes - probe.bytesOf('kv') - probe.buffer('act.ropeCosSin').bytes;
    const byMemory = Math.max(Math.floor((budgetBytes - fixed) / perToken), 0);
    const tooLarge = (room: number): Df11Error => {
      const part = (kind: 'weights' | 'transient' | 'activation') => gib(probe.bytesOf(kind));
      const transient = probe.has('transient') ? ` + decode buffer (${part('transient')})` : '';
      return new Df11Error(
        'model-too-large',
        `the model does not fit in ${gib(budgetBytes)}: ${options.mode.toUpperCase()} weights (${part('weights')})${transient} + activations (${part('activation')}) = ${gib(fixed)}, leaving room for ${room} tokens of context (at least ${prefillChunk} needed)`,
      );
    };
    if (byMemory < prefillChunk) throw tooLarge(byMemory);
    let context = Math.min(byMemory, caps);
    const limitedBy = context === byMemory ? 'memory' : context === spec.maxPositionEmbeddings ? 'max-position-embeddings' : 'binding-size';
    // The fixed part grows a little with the context (the RoPE tables' padding, the attention partials, whose
    // split count grows with the keys): the largest context up to the estimate whose whole layout fits.
    const layoutAt = (contextLength: number): MemoryLayout => memoryLayout(spec, { ...chosen, contextLength });
    let layout = layoutAt(context);
    if (layout.totalBytes > budgetBytes) {
      let [lo, hi] = [0, context]; // layoutAt(lo) fits (or lo = 0), layoutAt(hi) does not
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (layoutAt(mid).totalBytes <= budgetBytes) lo = mid;
        else hi = mid;
      }
      context = lo;
      if (lo > 0) layout = layoutAt(lo);
    }
    if (context < Math.min(prefillChunk, spec.maxPositionEmbeddings) || layout.totalBytes > budgetBytes) throw tooLarge(context);
    return { byMemory, context, layout, limitedBy } as const;
  };

  // The residency: given, or (df11, 'auto') the most of the dial that leaves the context asked for.
  let resident: Residency = dial === 'auto' ? NO_RESIDENCY : { layers: dial, head: dial === numLayers };
  /** The context wanted, before the caps (none: what the budget buys). */
  let target = asked ?? Infinity;
  if (options.mode === 'df11' && dial === 'auto') {
    const wanted = Math.min(asked ?? DEFAULT_CONTEXT, caps);
    const steps: Residency[] = [full, ...Array.from({ length: numLayers + 1 }, (_, i) => ({ layers: numLayers - i, head: false }))];
    const fits = steps.find((r) => memoryLayout(spec, { ...base, resident: r, contextLength: wanted }).totalBytes <= budgetBytes);
    if (fits) {
      resident = fits;
      // A context nobody asked for takes what is left only once everything is resident.
      if (asked === undefined && fits !== full) target = DEFAULT_CONTEXT;
    }
  }
  const cap = capacity(resident);
  const maxContext = Math.min(target, cap.context);
  const maxContextByMemory = cap.byMemory;
  const limitedBy = maxContext < target ? cap.limitedBy : 'requested';
  const layout = maxContext === cap.context ? cap.layout : memoryLayout(spec, { ...base, resident, contextLength: maxContext });

  const small = layout.buffers.filter((b) => b.key.startsWith('small.')).reduce((a, b) => a + b.bytes, 0);
  const weightBytes = layout.bytesOf('weights');
  const ropeTableBytes = layout.buffer('act.ropeCosSin').bytes;
  const plan: MemoryPlan = {
    mode: options.mode,
    budgetBytes,
    weightBytes,
    matrixWeightBytes: weightBytes - small,
    smallWeightBytes: small,
    weightsEstimated: layout.buffers.some((b) => b.estimated),
    transientBytes: layout.bytesOf('transient'),
    activationBytes: layout.bytesOf('activation') - ropeTableBytes,
    prefillChunk,
    kvBytesPerToken,
    ropeBytesPerToken,
    kvCacheBytes: layout.bytesOf('kv'),
    ropeTableBytes,
    totalBytes: layout.totalBytes,
    maxContext,
    maxContextByMemory,
    maxPositionEmbeddings: spec.maxPositionEmbeddings,
    limitedBy,
    resident: { ...layout.resident, totalLayers: numLayers },
    spareBytes: budgetBytes - layout.totalBytes,
  };
  return { plan, layout };
}

export function planMemory(spec: ModelSpec, options: PlanOptions): MemoryPlan {
  return planLayout(spec, options).plan;
}

/**
 * The resident sizes of the DF11 units of a directory (given its parsed config.json), as uploaded (see
 * uploadedUnitBytes), read from the safetensors headers only. Undefined for a directory that is not
 * DF11 or holds no units.
 */
export async function df11UnitSizes(files: ModelFiles, config: unknown): Promise<Array<{ name: string; bytes: number }> | undefined> {
  if ((config as Record<string, unknown> | null)?.dfloat11_config === undefined) return undefined;
  const units = new Map<string, Partial<Record<keyof Df11UnitLengths, number>>>();
  const field: Partial<Record<(typeof UNIT_PARTS)[number], keyof Df11UnitLengths>> = {
    encoded_exponent: 'encodedExponent',
    sign_mantissa: 'signMantissa',
    luts: 'luts',
    gaps: 'gaps',
    output_positions: 'outputPositions',
  };
  for (const name of (await files.list()).filter((n) => n.endsWith('.safetensors'))) {
    const file = await SafetensorsFile.open(await files.open(name), name);
    for (const [tensor, info] of file.tensors) {
      const part = UNIT_PARTS.find((p) => tensor.endsWith(`.${p}`));
      const key = part && field[part]; // split_positions stays on the CPU
      if (!key) continue;
      const unit = tensor.slice(0, -part.length - 1);
      units.set(unit, { ...units.get(unit), [key]: info.byteLength });
    }
  }
  const sizes = [...units].map(([name, l]) => ({
    name,
    bytes: uploadedUnitBytes({ encodedExponent: l.encodedExponent ?? 0, signMantissa: l.signMantissa ?? 0, luts: l.luts ?? 0, gaps: l.gaps ?? 0, outputPositions: l.outputPositions ?? 0 }),
  }));
  return sizes.length > 0 ? sizes : undefined;
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}
