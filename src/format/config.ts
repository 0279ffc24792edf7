/**
 * Hugging Face config.json → ModelSpec, and the one place that knows the weight names and shapes of the
 * supported architectures (llama, mistral, qwen2, qwen3 share the Llama layout; differences are flags).
 */
import { Df11Error } from '../errors.ts';
import type { Architecture, ModelSpec, RopeSpec } from './model-spec.ts';

const ARCHITECTURES: readonly Architecture[] = ['llama', 'mistral', 'qwen2', 'qwen3'];

type Json = Record<string, unknown>;

export function specFromConfig(config: unknown): ModelSpec {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new Df11Error('config', 'config.json is not a JSON object');
  }
  const c = config as Json;
  const modelType = c.model_type;
  if (typeof modelType !== 'string') throw new Df11Error('config', 'config.json has no model_type');
  if (!(ARCHITECTURES as readonly string[]).includes(modelType)) {
    throw new Df11Error(
      'unsupported-architecture',
      `model_type '${modelType}' is not supported (supported: ${ARCHITECTURES.join(', ')})`,
    );
  }
  const architecture = modelType as Architecture;
  const act = c.hidden_act;
  if (act !== undefined && act !== 'silu') {
    throw new Df11Error('unsupported-architecture', `hidden_act '${String(act)}' is not supported (only silu)`);
  }
  if (c.mlp_bias === true) throw new Df11Error('unsupported-architecture', 'mlp_bias: true is not supported');
  if (c.use_sliding_window === true) {
    throw new Df11Error('unsupported-architecture', 'use_sliding_window: true is not supported');
  }

  const hiddenSize = positiveInt(c, 'hidden_size');
  const numHeads = positiveInt(c, 'num_attention_heads');
  const numKvHeads = positiveInt(c, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new Df11Error('config', `num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  // Qwen3Config defaults head_dim to 128; the Llama family derives it (and some configs write null).
  const derivedHeadDim = architecture === 'qwen3' ? 128 : hiddenSize / numHeads;
  const headDim = positiveInt(c, 'head_dim', c.head_dim === null ? hiddenSize / numHeads : derivedHeadDim);

  return checkSizes({
    architecture,
    vocabSize: positiveInt(c, 'vocab_size'),
    hiddenSize,
    intermediateSize: positiveInt(c, 'intermediate_size'),
    numLayers: positiveInt(c, 'num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: positiveNumber(c, 'rms_norm_eps', 1e-6),
    rope: ropeFromConfig(c),
    maxPositionEmbeddings: positiveInt(c, 'max_position_embeddings', 2048),
    tieWordEmbeddings: bool(c, 'tie_word_embeddings', false),
    // Qwen2 always has q/k/v biases (its config has no attention_bias switch).
    attentionBias: architecture === 'qwen2' || bool(c, 'attention_bias', false),
    qkNorm: architecture === 'qwen3',
    eosTokenIds: tokenIds(c, 'eos_token_id'),
    bosTokenId: tokenIds(c, 'bos_token_id')[0] ?? null,
  });
}

// ---- size bounds ---------------------------------------------------------------------------------

/**
 * The largest each size of a model can be. Generous (about 8x the largest published decoder: 126 layers,
 * hidden 16384, vocab 256K, 1M positions), and small enough that every loop over layers, heads or
 * positions ends at once: a config claiming 2^31 layers is rejected here, before any loop runs.
 */
export const SIZE_LIMITS = {
  numLayers: 1024,
  hiddenSize: 131072,
  intermediateSize: 1048576,
  vocabSize: 4194304,
  numHeads: 1024,
  numKvHeads: 1024,
  headDim: 2048,
  maxPositionEmbeddings: 16777216,
} as const satisfies Partial<Record<keyof ModelSpec, number>>;

/** `spec` if every size is within SIZE_LIMITS, else Df11Error('config'). */
export function checkSizes(spec: ModelSpec): ModelSpec {
  for (const [key, limit] of Object.entries(SIZE_LIMITS) as Array<[keyof typeof SIZE_LIMITS, number]>) {
    if (spec[key] > limit) throw new Df11Error('config', `config: ${key} = ${spec[key]} exceeds what a model can be (at most ${limit})`);
  }
  return spec;
}

/**
 * RoPE from either spelling: `rope_theta` + `rope_scaling` (transformers < 5) or `rope_parameters`
 * (`{rope_type, rope_theta, ...}`, transformers >= 5).
 */
function ropeFromConfig(c: Json): RopeSpec {
  const params = optionalObject(c, 'rope_parameters') ?? optionalObject(c, 'rope_scaling');
  const thetaHolder = params && params.rope_theta !== undefined ? params : c;
  const theta = positiveNumber(thetaHolder, 'rope_theta', 10000);
  const type = params ? (params.rope_type ?? params.type ?? 'default') : 'default';
  if (type === 'default') return { theta, type: 'default' };
  if (type !== 'llama3') {
    throw new Df11Error('unsupported-architecture', `rope type '${String(type)}' is not supported (default, llama3)`);
  }
  const p = params as Json;
  return {
    theta,
    type: 'llama3',
    llama3: {
      factor: positiveNumber(p, 'factor'),
      lowFreqFactor: positiveNumber(p, 'low_freq_factor'),
      highFreqFactor: positiveNumber(p, 'high_freq_factor'),
      originalMaxPositionEmbeddings: positiveInt(p, 'original_max_position_embeddings'),
    },
  };
}

function optionalObject(c: Json, key: string): Json | undefined {
  const v = c[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new Df11Error('config', `config.${key} is not an object`);
  return v as Json;
}

function positiveInt(c: Json, key: string, fallback?: number): number {
  const v = c[key] ?? fallback;
  if (v === undefined) throw new Df11Error('config', `config.json is missing ${key}`);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw new Df11Error('config', `config.${key} = ${JSON.stringify(v)} is not a positive integer`);
  }
  return v;
}

function positiveNumber(c: Json, key: string, fallback?: number): number {
  const v = c[key] ?? fallback;
  if (v === undefined) throw new Df11Error('config', `config.json is missing ${key}`);
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new Df11Error('config', `config.${key} = ${JSON.stringify(v)} is not a positive number`);
  }
  return v;
}

function bool(c: Json, key: string, fallback: boolean): boolean {
  const v = c[key] ?? fallback;
  if (typeof v !== 'boolean') throw new Df11Error('config', `config.${key} = ${JSON.stringify(v)} is not a boolean`);
  return v;
}

/** A token id field: an int, a list of ints, or null/absent. */
function tokenIds(c: Json, key: string): number[] {
  const v = c[key];
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  for (const id of list) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
      throw new Df11Error('config', `config.${key} = ${JSON.stringify(v)} is not a token id or list of them`);
    }
  }
  return list as number[];
}

// ---- weights -------------------------------------------------------------------------------------

/** The seven linear projections of a decoder layer, in the order DF11 concatenates them. */
export const LAYER_LINEARS = [
  'self_attn.q_proj',
  'self_attn.k_proj',
  'self_attn.v_proj',
  'self_attn.o_proj',
  'mlp.gate_proj',
  'mlp.up_proj',
  'mlp.down_proj',
] as const;

export type LayerLinear = (typeof LAYER_LINEARS)[number];

/** [out, in] of every matrix (PyTorch Linear layout; the embedding is [vocab, hidden]). */
export function linearShapes(spec: ModelSpec): Record<LayerLinear | 'embed_tokens' | 'lm_head', [number, number]> {
  const { hiddenSize: h, intermediateSize: f, numHeads, numKvHeads, headDim, vocabSize } = spec;
  return {
    'self_attn.q_proj': [numHeads * headDim, h],
    'self_attn.k_proj': [numKvHeads * headDim, h],
    'self_attn.v_proj': [numKvHeads * headDim, h],
    'self_attn.o_proj': [h, numHeads * headDim],
    'mlp.gate_proj': [f, h],
    'mlp.up_proj': [f, h],
    'mlp.down_proj': [h, f],
    embed_tokens: [vocabSize, h],
    lm_head: [vocabSize, h],
  };
}

/**
 * Every parameter of the model with its shape, in canonical order (embedding, layers 0..n-1, final norm,
 * head). The head is listed only when not tied.
 */
export function parameterShapes(spec: ModelSpec): Map<string, number[]> {
  const shapes = linearShapes(spec);
  const out = new Map<string, number[]>();
  out.set('model.embed_tokens.weight', shapes.embed_tokens);
  for (let i = 0; i < spec.numLayers; i++) {
    const p = `model.layers.${i}`;
    out.set(`${p}.input_layernorm.weight`, [spec.hiddenSize]);
    for (const linear of LAYER_LINEARS) {
      out.set(`${p}.${linear}.weight`, shapes[linear]);
      if (spec.attentionBias && (linear === 'self_attn.q_proj' || linear === 'self_attn.k_proj' || linear === 'self_attn.v_proj')) {
        out.set(`${p}.${linear}.bias`, [shapes[linear][0]]);
      }
    }
    if (spec.qkNorm) {
      out.set(`${p}.self_attn.q_norm.weight`, [spec.headDim]);
      out.set(`${p}.self_attn.k_norm.weight`, [spec.headDim]);
    }
    out.set(`${p}.post_attention_layernorm.weight`, [spec.hiddenSize]);
  }
  out.set('model.norm.weight', [spec.hiddenSize]);
  if (!spec.tieWordEmbeddings) out.set('lm_head.weight', shapes.lm_head);
  return out;
}

/** The shape of one parameter by name, or undefined if the architecture has no such parameter. */
export function weightShape(spec: ModelSpec, tensorName: string): number[] | undefined {
  if (tensorName === 'lm_head.weight') return linearShapes(spec).lm_head;
  const layer = /^model\.layers\.(\d+)\./.exec(tensorName);
  if (layer && Number(layer[1]) < spec.numLayers) {
    // All layers share shapes: look the name up as layer 0.
    return parameterShapes({ ...spec, numLayers: 1 }).get(tensorName.replace(/^model\.layers\.\d+\./, 'model.layers.0.'));
  }
  return layer ? undefined : parameterShapes({ ...spec, numLayers: 0 }).get(tensorName);
}

/** The official DFloat11 pattern: one unit per decoder layer, the head and the embedding on their own. */
export function defaultPattern(spec: ModelSpec): Record<string, string[]> {
  const pattern: Record<string, string[]> = { 'model\\.layers\\.\\d+': [...LAYER_LINEARS] };
  if (!spec.tieWordEmbeddings) pattern.lm_head = [];
  pattern['model\\.embed_tokens'] = [];
  return pattern;
}
