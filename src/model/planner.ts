/**
 * Memory planner: what a model needs on the GPU, and how much context the rest buys.
 *
 * Parts, in bytes (H hidden, F intermediate, L layers, nH/nKV heads, hd head_dim, V vocab, P prefill chunk):
 *
 *   weights      resident. Matrices: BF16 = 2 bytes per weight; DF11 = the real compressed unit bytes when
 *                known, else ceil(n · 10.9 / 8) per unit (a unit = one decoder layer's matrices, the
 *                embedding, the LM head; a tied head is the embedding unit). Norm weights and q/k/v biases
 *                are stored as f32 (the kernels read them as f32): 4 bytes each.
 *   transient    DF11 only: one decoder layer's matrices decoded to BF16, 2 · (q+k+v+o+gate+up+down)
 *                elements; LM-head tiles and embedding rows are decoded into the same buffer.
 *   activations  f32 buffers for a prefill chunk of P tokens:
 *                4 · P · (3H + 2·nH·hd + 2·nKV·hd + 2F + V)
 *                = residual, normed input, projection output (3H; + H for the o/down output before its
 *                  post-norm with Gemma's sandwich norms); q and attention output (2·nH·hd);
 *                  k and v of the chunk (2·nKV·hd); gate and up (2F); logits of every chunk row (V).
 *                Attention uses online softmax, so there is no (tokens × context) score buffer.
 *   per token    KV cache, f32 K and V: 2 · L · nKV · hd · 4 (sliding-window layers too: the cache is not a
 *                ring buffer yet); RoPE cos/sin tables: rotary_dim/2 · 2 · 4 = 4 · rotary_dim per table
 *                (Gemma 3 has two: local and global).
 *
 * maxContext = min(floor((budget − weights − transient − activations) / per-token bytes),
 *                  max_position_embeddings, the largest context one layer's K (or V) buffer can hold
 *                  when the adapter's maxStorageBufferBindingSize is given). Every number is an integer
 *                byte count; nothing is rounded except the DF11 estimate (ceil per unit) and the division.
 */
import { Df11Error } from '../errors.ts';
import type { ModelFiles } from '../format/byte-source.ts';
import { layerLinears, linearShapes, parameterShapes } from '../format/config.ts';
import type { ModelSpec } from '../format/model-spec.ts';
import { UNIT_PARTS } from '../format/model-reader.ts';
import { SafetensorsFile } from '../format/safetensors.ts';

export type WeightMode = 'df11' | 'bf16';

/** WebGPU reports no memory size; without a budget from the caller this is assumed. */
export const DEFAULT_BUDGET_BYTES = 4 * 2 ** 30;
export const DEFAULT_PREFILL_CHUNK = 64;
/** Bits per compressed weight for estimates (DF11 lands at 10.8–10.9 on released LLMs). */
export const DF11_ESTIMATE_BITS = 10.9;
const F32 = 4;
const BF16 = 2;

export interface PlanOptions {
  mode: WeightMode;
  /** GPU memory for the model, in bytes (default DEFAULT_BUDGET_BYTES). */
  budgetBytes?: number;
  /** Real bytes of all resident DF11 unit tensors, when known (replaces the 10.9-bit estimate). */
  df11WeightBytes?: number;
  /** Tokens per prefill step (default 64). */
  prefillChunk?: number;
  /** The adapter's maxStorageBufferBindingSize: caps one layer's K or V buffer. */
  maxStorageBindingBytes?: number;
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
  activationBytes: number;
  prefillChunk: number;
  kvBytesPerToken: number;
  ropeBytesPerToken: number;
  /** kvBytesPerToken · maxContext */
  kvCacheBytes: number;
  /** ropeBytesPerToken · maxContext */
  ropeTableBytes: number;
  maxContext: number;
  /** Context the memory alone allows, before the caps. */
  maxContextByMemory: number;
  maxPositionEmbeddings: number;
  limitedBy: 'memory' | 'max-position-embeddings' | 'binding-size';
  /** Budget left after every part. */
  spareBytes: number;
}

export function planMemory(spec: ModelSpec, options: PlanOptions): MemoryPlan {
  const budgetBytes = options.budgetBytes ?? DEFAULT_BUDGET_BYTES;
  const prefillChunk = options.prefillChunk ?? DEFAULT_PREFILL_CHUNK;
  if (!Number.isSafeInteger(budgetBytes) || budgetBytes <= 0) throw new Df11Error('bad-request', `budget ${budgetBytes} is not a positive byte count`);
  if (!Number.isSafeInteger(prefillChunk) || prefillChunk <= 0) throw new Df11Error('bad-request', `prefill chunk ${prefillChunk} is not a positive integer`);

  const { matrices, small } = countWeights(spec);
  const layerMatrixElements = layerElements(spec);
  let matrixWeightBytes: number;
  let weightsEstimated = false;
  if (options.mode === 'bf16') {
    matrixWeightBytes = BF16 * matrices.reduce((sum, unit) => sum + unit, 0);
  } else if (options.df11WeightBytes !== undefined) {
    if (!Number.isSafeInteger(options.df11WeightBytes) || options.df11WeightBytes <= 0) {
      throw new Df11Error('bad-request', `df11WeightBytes ${options.df11WeightBytes} is not a positive byte count`);
    }
    matrixWeightBytes = options.df11WeightBytes;
  } else {
    matrixWeightBytes = matrices.reduce((sum, unit) => sum + df11EstimateBytes(unit), 0);
    weightsEstimated = true;
  }
  const smallWeightBytes = F32 * small;
  const weightBytes = matrixWeightBytes + smallWeightBytes;
  const transientBytes = options.mode === 'df11' ? BF16 * layerMatrixElements : 0;
  const { hiddenSize: h, intermediateSize: f, numHeads, numKvHeads, headDim, vocabSize, numLayers } = spec;
  const activationBytes =
    F32 * prefillChunk * ((spec.sandwichNorms ? 4 : 3) * h + 2 * numHeads * headDim + 2 * numKvHeads * headDim + 2 * f + vocabSize);
  const kvBytesPerToken = 2 * numLayers * numKvHeads * headDim * F32;
  const ropeBytesPerToken = spec.ropes.reduce((a, r) => a + F32 * r.rotaryDim, 0);
  const perToken = kvBytesPerToken + ropeBytesPerToken;

  const fixed = weightBytes + transientBytes + activationBytes;
  const maxContextByMemory = Math.max(Math.floor((budgetBytes - fixed) / perToken), 0);
  const what = `${options.mode.toUpperCase()} weights (${gib(weightBytes)})${transientBytes ? ` + decode buffer (${gib(transientBytes)})` : ''} + activations (${gib(activationBytes)})`;
  if (maxContextByMemory < prefillChunk) {
    throw new Df11Error(
      'model-too-large',
      `the model does not fit in ${gib(budgetBytes)}: ${what} = ${gib(fixed)}, leaving room for ${maxContextByMemory} tokens of context (at least ${prefillChunk} needed)`,
    );
  }
  const bindingCap =
    options.maxStorageBindingBytes === undefined ? Infinity : Math.floor(options.maxStorageBindingBytes / (numKvHeads * headDim * F32));
  const maxContext = Math.min(maxContextByMemory, spec.maxPositionEmbeddings, bindingCap);
  const limitedBy = maxContext === maxContextByMemory ? 'memory' : maxContext === spec.maxPositionEmbeddings ? 'max-position-embeddings' : 'binding-size';
  const kvCacheBytes = kvBytesPerToken * maxContext;
  const ropeTableBytes = ropeBytesPerToken * maxContext;
  return {
    mode: options.mode,
    budgetBytes,
    weightBytes,
    matrixWeightBytes,
    smallWeightBytes,
    weightsEstimated,
    transientBytes,
    activationBytes,
    prefillChunk,
    kvBytesPerToken,
    ropeBytesPerToken,
    kvCacheBytes,
    ropeTableBytes,
    maxContext,
    maxContextByMemory,
    maxPositionEmbeddings: spec.maxPositionEmbeddings,
    limitedBy,
    spareBytes: budgetBytes - fixed - kvCacheBytes - ropeTableBytes,
  };
}

/**
 * The real `df11WeightBytes` of a DF11 directory (given its parsed config.json): the bytes of every unit tensor (encoded exponents,
 * sign/mantissa, LUTs, gaps, positions), read from the safetensors headers only. Undefined for a
 * directory that is not DF11 or holds no units.
 */
export async function df11UnitBytes(files: ModelFiles, config: unknown): Promise<number | undefined> {
  if ((config as Record<string, unknown> | null)?.dfloat11_config === undefined) return undefined;
  let total = 0;
  for (const name of (await files.list()).filter((n) => n.endsWith('.safetensors'))) {
    const file = await SafetensorsFile.open(await files.open(name), name);
    for (const [tensor, info] of file.tensors) {
      if (UNIT_PARTS.some((part) => tensor.endsWith(`.${part}`))) total += info.byteLength;
    }
  }
  return total > 0 ? total : undefined;
}

/** DF11 bytes of a unit of `elements` weights at DF11_ESTIMATE_BITS (10.9 = 109/80 bytes per weight). */
export function df11EstimateBytes(elements: number): number {
  return Math.ceil((elements * 109) / 80);
}

/** Elements of every compressed unit (layers, embedding, untied head) and of the small f32 vectors. */
function countWeights(spec: ModelSpec): { matrices: number[]; small: number } {
  const shapes = linearShapes(spec);
  const matrices: number[] = [shapes.embed_tokens[0] * shapes.embed_tokens[1]];
  for (let i = 0; i < spec.numLayers; i++) matrices.push(layerElements(spec));
  if (!spec.tieWordEmbeddings) matrices.push(shapes.lm_head[0] * shapes.lm_head[1]);
  const matrixNames = new Set(['model.embed_tokens.weight', 'lm_head.weight']);
  let small = 0;
  for (const [name, shape] of parameterShapes(spec)) {
    if (matrixNames.has(name) || layerLinears(spec).some((l) => name.endsWith(`.${l}.weight`))) continue;
    small += shape.reduce((a, b) => a * b, 1);
  }
  return { matrices, small };
}

function layerElements(spec: ModelSpec): number {
  const shapes = linearShapes(spec);
  return layerLinears(spec).reduce((sum, l) => sum + shapes[l][0] * shapes[l][1], 0);
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}
