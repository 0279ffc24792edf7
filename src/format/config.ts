/**
 * Hugging Face config.json → ModelSpec, and the one place that knows the weight names and shapes of the
 * supported architectures (llama, mistral, qwen2, qwen3, smollm3, phi3 and gemma3 share the Llama layout;
 * differences are flags and per-layer attributes). Every config field that changes the math and is not
 * implemented is a typed `unsupported-architecture` error naming it: nothing is silently ignored.
 */
import { Df11Error } from '../errors.ts';
import type { Activation, Architecture, LayerSpec, LinearAttentionSpec, Mixer, ModelSpec, RopeSpec } from './model-spec.ts';

const ARCHITECTURES: readonly Architecture[] = ['llama', 'mistral', 'qwen2', 'qwen3', 'gemma3', 'phi3', 'smollm3', 'qwen3_5'];

/** model_type values we recognise but do not run, with the reason users get. */
const REJECTED: Readonly<Record<string, string>> = {
  qwen3_5_moe_text: 'Qwen3.5-MoE is not implemented (mixture-of-experts MLP)',
  gemma2: 'Gemma 2 is not implemented (attn_logit_softcapping, final_logit_softcapping)',
};

/** The model_type each architecture is spelled as in config.json (where it differs). */
const MODEL_TYPES: Partial<Record<Architecture, string>> = { gemma3: 'gemma3_text, gemma3', qwen3_5: 'qwen3_5_text, qwen3_5' };

/** Largest key head of a Gated DeltaNet layer: the delta-rule kernel holds q and k in workgroup memory. */
export const MAX_LINEAR_KEY_HEAD_DIM = 256;
/** Largest conv kernel a config may claim (Qwen3.5 uses 4): bounds the conv's loop and its state. */
const MAX_LINEAR_CONV_KERNEL = 64;

type Json = Record<string, unknown>;

export function specFromConfig(config: unknown): ModelSpec {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new Df11Error('config', 'config.json is not a JSON object');
  }
  let c = config as Json;
  if (c.model_type === 'gemma3' || c.model_type === 'qwen3_5') {
    // Gemma 3 / Qwen3.5 multimodal: the text model's config sits in text_config (vision weights are skipped).
    const text = optionalObject(c, 'text_config');
    if (!text) throw new Df11Error('config', `a '${c.model_type}' config.json has no text_config`);
    c = { tie_word_embeddings: c.tie_word_embeddings, ...text, model_type: `${c.model_type}_text` };
  }
  const modelType = c.model_type === 'gemma3_text' ? 'gemma3' : c.model_type === 'qwen3_5_text' ? 'qwen3_5' : c.model_type;
  if (typeof modelType !== 'string') throw new Df11Error('config', 'config.json has no model_type');
  if (!(ARCHITECTURES as readonly string[]).includes(modelType)) {
    const why = REJECTED[modelType] ? `: ${REJECTED[modelType]}` : '';
    throw new Df11Error(
      'unsupported-architecture',
      `model_type '${String(c.model_type)}' is not supported${why} (supported: ${ARCHITECTURES.map((a) => MODEL_TYPES[a] ?? a).join(', ')})`,
    );
  }
  const architecture = modelType as Architecture;
  const gemma = architecture === 'gemma3';
  const qwen35 = architecture === 'qwen3_5';
  rejectUnimplemented(c, architecture);

  const hiddenSize = positiveInt(c, 'hidden_size');
  const numHeads = positiveInt(c, 'num_attention_heads');
  // Qwen3_5TextConfig defaults to 4 KV heads; the Llama family to one per head.
  const numKvHeads = positiveInt(c, 'num_key_value_heads', qwen35 ? 4 : numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new Df11Error('config', `num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  // Qwen3Config defaults head_dim to 128, Gemma3TextConfig and Qwen3_5TextConfig to 256; the Llama family derives it (and some configs write null).
  const derivedHeadDim = architecture === 'qwen3' ? 128 : gemma || qwen35 ? 256 : hiddenSize / numHeads;
  const headDim = checkSize('headDim', positiveInt(c, 'head_dim', c.head_dim === null ? hiddenSize / numHeads : derivedHeadDim));
  // Bounded here: the RoPE tables and per-layer attributes below loop over them.
  const numLayers = checkSize('numLayers', positiveInt(c, 'num_hidden_layers'));
  const maxPositionEmbeddings = checkSize('maxPositionEmbeddings', positiveInt(c, 'max_position_embeddings', qwen35 ? 32768 : 2048));
  const { ropes, ropeOf } = ropesFromConfig(c, architecture, headDim, maxPositionEmbeddings);
  const windows = layerWindows(c, architecture, numLayers);
  const layers: LayerSpec[] = windows.map((w, i) => ({ mixer: w.mixer, window: w.window, rope: w.mixer === 'linear' ? null : ropeOf(i, w.sliding) }));
  const linearAttention = layers.some((l) => l.mixer === 'linear') ? linearAttentionFromConfig(c) : undefined;
  const fusedProjections = architecture === 'phi3';
  const attentionBias = architecture === 'qwen2' || bool(c, 'attention_bias', false);
  if (attentionBias && fusedProjections) throw new Df11Error('unsupported-architecture', 'attention_bias: true with a fused qkv_proj is not supported');
  if (attentionBias && qwen35) throw new Df11Error('unsupported-architecture', 'attention_bias: true is not supported (qwen3_5: gated q_proj)');

  return checkSizes({
    architecture,
    vocabSize: positiveInt(c, 'vocab_size'),
    hiddenSize,
    intermediateSize: positiveInt(c, 'intermediate_size'),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: positiveNumber(c, 'rms_norm_eps', 1e-6),
    ropes,
    layers,
    maxPositionEmbeddings,
    // Gemma3TextConfig ties by default; the others do not.
    tieWordEmbeddings: bool(c, 'tie_word_embeddings', gemma),
    // Qwen2 always has q/k/v biases (its config has no attention_bias switch).
    attentionBias,
    qkNorm: architecture === 'qwen3' || gemma || qwen35,
    fusedProjections,
    // Qwen3_5RMSNorm is (1 + w) too (the Gated DeltaNet's gated norm is plain w: its own weight, see LayerWeights).
    normWeightOffset: gemma || qwen35 ? 1 : 0,
    sandwichNorms: gemma,
    activation: activationFromConfig(c, gemma),
    ...(linearAttention ? { linearAttention } : {}),
    attentionOutputGate: qwen35,
    attentionScale: gemma ? 1 / Math.sqrt(positiveNumber(c, 'query_pre_attn_scalar', 256)) : 1 / Math.sqrt(headDim),
    embedScale: gemma ? Math.sqrt(hiddenSize) : 1,
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
  for (const key of Object.keys(SIZE_LIMITS) as Array<keyof typeof SIZE_LIMITS>) checkSize(key, spec[key]);
  return spec;
}

/** `value` if within SIZE_LIMITS[key], else Df11Error('config'): for sizes that bound a loop before the spec exists. */
function checkSize(key: keyof typeof SIZE_LIMITS, value: number): number {
  if (value > SIZE_LIMITS[key]) throw new Df11Error('config', `config: ${key} = ${value} exceeds what a model can be (at most ${SIZE_LIMITS[key]})`);
  return value;
}

/** Config fields that would change the math and that the forward does not implement. */
function rejectUnimplemented(c: Json, architecture: Architecture): void {
  const unsupported = (what: string): never => {
    throw new Df11Error('unsupported-architecture', `${what} is not supported (${architecture})`);
  };
  if (c.mlp_bias === true) unsupported('mlp_bias: true');
  if (c.lm_head_bias === true) unsupported('lm_head_bias: true');
  for (const key of ['attn_logit_softcapping', 'final_logit_softcapping', 'attention_chunk_size']) {
    if (c[key] !== undefined && c[key] !== null) unsupported(`${key}: ${JSON.stringify(c[key])}`);
  }
  if (c.use_bidirectional_attention === true) unsupported('use_bidirectional_attention: true');
  if (architecture === 'qwen3_5') {
    // The Gated DeltaNet conv uses hidden_act too; the kernel implements SiLU.
    if (c.hidden_act !== undefined && c.hidden_act !== 'silu') unsupported(`hidden_act ${JSON.stringify(c.hidden_act)}`);
    if (c.attn_output_gate === false) unsupported('attn_output_gate: false');
    if (typeof c.num_experts === 'number' && c.num_experts > 0) unsupported(`num_experts: ${c.num_experts} (mixture of experts)`);
  }
}

/** The Gated DeltaNet sizes (Qwen3_5TextConfig defaults: kernel 4, 16 key heads, 32 value heads, 128 dims each). */
function linearAttentionFromConfig(c: Json): LinearAttentionSpec {
  const la: LinearAttentionSpec = {
    convKernel: positiveInt(c, 'linear_conv_kernel_dim', 4),
    keyHeads: positiveInt(c, 'linear_num_key_heads', 16),
    valueHeads: positiveInt(c, 'linear_num_value_heads', 32),
    keyHeadDim: positiveInt(c, 'linear_key_head_dim', 128),
    valueHeadDim: positiveInt(c, 'linear_value_head_dim', 128),
  };
  if (la.valueHeads % la.keyHeads !== 0) {
    throw new Df11Error('config', `linear_num_value_heads ${la.valueHeads} is not a multiple of linear_num_key_heads ${la.keyHeads}`);
  }
  if (la.keyHeadDim > MAX_LINEAR_KEY_HEAD_DIM) {
    throw new Df11Error('unsupported-architecture', `linear_key_head_dim ${la.keyHeadDim} is not supported (at most ${MAX_LINEAR_KEY_HEAD_DIM})`);
  }
  const limits = [
    ['linear_conv_kernel_dim', la.convKernel, MAX_LINEAR_CONV_KERNEL],
    ['linear_num_key_heads', la.keyHeads, SIZE_LIMITS.numHeads],
    ['linear_num_value_heads', la.valueHeads, SIZE_LIMITS.numHeads],
    ['linear_value_head_dim', la.valueHeadDim, SIZE_LIMITS.headDim],
  ] as const;
  for (const [key, value, limit] of limits) {
    if (value > limit) throw new Df11Error('config', `config: ${key} = ${value} exceeds what a model can be (at most ${limit})`);
  }
  return la;
}

function activationFromConfig(c: Json, gemma: boolean): Activation {
  // Gemma 3 names it hidden_activation (default gelu_pytorch_tanh); the Llama family hidden_act (default silu).
  const key = gemma ? 'hidden_activation' : 'hidden_act';
  const act = c[key] ?? (gemma ? 'gelu_pytorch_tanh' : 'silu');
  if (act === 'silu') return 'silu';
  if (act === 'gelu_pytorch_tanh' || act === 'gelu_tanh') return 'gelu_tanh';
  throw new Df11Error('unsupported-architecture', `${key} '${String(act)}' is not supported (silu, gelu_pytorch_tanh)`);
}

/**
 * Per layer: sliding or full attention, and the window. From `layer_types` when the config has it
 * (transformers >= 5 writes it for every architecture that has per-layer types); otherwise Mistral and
 * Phi-3 slide every layer when `sliding_window` is set, Qwen2/Qwen3/SmolLM3 the layers from
 * `max_window_layers` on when `use_sliding_window`, Gemma 3 all but every `sliding_window_pattern`-th.
 */
function layerWindows(c: Json, architecture: Architecture, numLayers: number): Array<{ sliding: boolean; window: number; mixer: Mixer }> {
  let types = c.layer_types;
  if ((types === undefined || types === null) && architecture === 'qwen3_5') {
    // Qwen3_5TextConfig: every full_attention_interval-th layer is full attention, the others linear.
    const interval = positiveInt(c, 'full_attention_interval', 4);
    types = Array.from({ length: numLayers }, (_, i) => ((i + 1) % interval === 0 ? 'full_attention' : 'linear_attention'));
  }
  let sliding: boolean[];
  let mixers: Mixer[] = Array(numLayers).fill('attention');
  if (types !== undefined && types !== null) {
    if (!Array.isArray(types) || types.length !== numLayers) {
      throw new Df11Error('config', `config.layer_types must list ${numLayers} layer types`);
    }
    const known = architecture === 'qwen3_5' ? ['full_attention', 'linear_attention'] : ['full_attention', 'sliding_attention'];
    for (const t of types) {
      if (!known.includes(t)) throw new Df11Error('unsupported-architecture', `layer_types '${String(t)}' is not supported (${architecture}: ${known.join(', ')})`);
    }
    sliding = types.map((t) => t === 'sliding_attention');
    mixers = types.map((t) => (t === 'linear_attention' ? 'linear' : 'attention'));
  } else if (architecture === 'mistral' || architecture === 'phi3') {
    sliding = Array(numLayers).fill(c.sliding_window !== undefined && c.sliding_window !== null);
  } else if (architecture === 'gemma3') {
    const pattern = positiveInt(c, c.sliding_window_pattern !== undefined ? 'sliding_window_pattern' : '_sliding_window_pattern', 6);
    sliding = Array.from({ length: numLayers }, (_, i) => (i + 1) % pattern !== 0);
  } else {
    const from = c.use_sliding_window === true ? positiveIntOrZero(c, 'max_window_layers', 0) : numLayers;
    sliding = Array.from({ length: numLayers }, (_, i) => i >= from);
  }
  const window = sliding.some((s) => s) ? positiveInt(c, 'sliding_window') : 0;
  return sliding.map((s, i) => ({ sliding: s, window: s ? window : 0, mixer: mixers[i]! }));
}

/**
 * The model's RoPE tables and which one each layer uses. Either spelling: `rope_theta` + `rope_scaling`
 * (transformers < 5; Gemma 3 adds `rope_local_base_freq` for its sliding layers) or `rope_parameters`
 * (transformers >= 5; Gemma 3 keys it by layer type). SmolLM3's `no_rope_layers[i] == 0` turns RoPE off.
 */
function ropesFromConfig(
  c: Json,
  architecture: Architecture,
  headDim: number,
  maxPositionEmbeddings: number,
): { ropes: RopeSpec[]; ropeOf: (layer: number, sliding: boolean) => number | null } {
  const params = optionalObject(c, 'rope_parameters');
  if (architecture === 'gemma3') {
    // [0] global (full-attention layers), [1] local (sliding layers).
    const perType = params && ('full_attention' in params || 'sliding_attention' in params);
    const global = perType
      ? ropeFromParams(c, requiredObject(params, 'full_attention', 'rope_parameters'), headDim, maxPositionEmbeddings)
      : ropeFromParams(c, params ?? optionalObject(c, 'rope_scaling'), headDim, maxPositionEmbeddings);
    const local = perType
      ? ropeFromParams(c, requiredObject(params, 'sliding_attention', 'rope_parameters'), headDim, maxPositionEmbeddings)
      : { theta: positiveNumber(c, 'rope_local_base_freq', 10000), type: 'default' as const, rotaryDim: headDim };
    return { ropes: [global, local], ropeOf: (_, sliding) => (sliding ? 1 : 0) };
  }
  // Qwen3_5TextConfig defaults partial_rotary_factor to 0.25; the others rotate the whole head.
  const rope = ropeFromParams(c, params ?? optionalObject(c, 'rope_scaling'), headDim, maxPositionEmbeddings, architecture === 'qwen3_5' ? 0.25 : 1);
  const noRope = c.no_rope_layers;
  if (architecture === 'smollm3' && noRope !== undefined && noRope !== null) {
    if (!Array.isArray(noRope) || !noRope.every((x) => x === 0 || x === 1)) {
      throw new Df11Error('config', 'config.no_rope_layers must be a list of 0 and 1');
    }
    // SmolLM3: use_rope = no_rope_layers[layer] (1 = RoPE, 0 = none).
    return { ropes: [rope], ropeOf: (i) => (noRope[i] === 0 ? null : 0) };
  }
  return { ropes: [rope], ropeOf: () => 0 };
}

/** One RoPE table's spec from a rope_parameters / rope_scaling object (or none: theta from the config). */
function ropeFromParams(c: Json, params: Json | undefined, headDim: number, maxPositionEmbeddings: number, defaultPartial = 1): RopeSpec {
  const thetaHolder = params && params.rope_theta !== undefined ? params : c;
  const theta = positiveNumber(thetaHolder, 'rope_theta', 10000);
  const factorHolder = params && params.partial_rotary_factor !== undefined ? params : c;
  const partial = positiveNumber(factorHolder, 'partial_rotary_factor', defaultPartial);
  const rotaryDim = Math.floor(headDim * partial);
  if (partial > 1 || rotaryDim % 2 !== 0 || rotaryDim === 0) {
    throw new Df11Error('unsupported-architecture', `partial_rotary_factor ${partial} gives ${rotaryDim} rotary dims of ${headDim} (must be even and positive)`);
  }
  const type = params ? (params.rope_type ?? params.type ?? 'default') : 'default';
  const p = params ?? {};
  switch (type) {
    case 'default':
      return { theta, type: 'default', rotaryDim };
    case 'linear':
      return { theta, type: 'linear', rotaryDim, linearFactor: positiveNumber(p, 'factor') };
    case 'llama3':
      return {
        theta,
        type: 'llama3',
        rotaryDim,
        llama3: {
          factor: positiveNumber(p, 'factor'),
          lowFreqFactor: positiveNumber(p, 'low_freq_factor'),
          highFreqFactor: positiveNumber(p, 'high_freq_factor'),
          originalMaxPositionEmbeddings: positiveInt(p, 'original_max_position_embeddings'),
        },
      };
    case 'longrope': {
      // Phi-3 keeps original_max_position_embeddings at the top level (newer configs also inside).
      const original = positiveInt(p.original_max_position_embeddings !== undefined ? p : c, 'original_max_position_embeddings');
      const factors = (key: string): number[] => {
        const v = p[key];
        if (!Array.isArray(v) || v.length !== rotaryDim / 2 || !v.every((x) => typeof x === 'number' && x > 0)) {
          throw new Df11Error('config', `rope ${key} must list ${rotaryDim / 2} positive numbers`);
        }
        return v as number[];
      };
      // HF: attention_factor given, else sqrt(1 + log(factor) / log(original)) with factor = max / original.
      const factor = p.factor !== undefined ? positiveNumber(p, 'factor') : maxPositionEmbeddings / original;
      const attentionFactor =
        p.attention_factor !== undefined && p.attention_factor !== null
          ? positiveNumber(p, 'attention_factor')
          : factor <= 1
            ? 1
            : Math.sqrt(1 + Math.log(factor) / Math.log(original));
      return { theta, type: 'longrope', rotaryDim, longrope: { shortFactor: factors('short_factor'), longFactor: factors('long_factor'), originalMaxPositionEmbeddings: original, attentionFactor } };
    }
    default:
      throw new Df11Error('unsupported-architecture', `rope type '${String(type)}' is not supported (default, linear, llama3, longrope)`);
  }
}

function optionalObject(c: Json, key: string): Json | undefined {
  const v = c[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new Df11Error('config', `config.${key} is not an object`);
  return v as Json;
}

function requiredObject(c: Json, key: string, where: string): Json {
  const v = optionalObject(c, key);
  if (!v) throw new Df11Error('config', `config.${where} has no ${key}`);
  return v;
}

function positiveInt(c: Json, key: string, fallback?: number): number {
  const v = c[key] ?? fallback;
  if (v === undefined) throw new Df11Error('config', `config.json is missing ${key}`);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw new Df11Error('config', `config.${key} = ${JSON.stringify(v)} is not a positive integer`);
  }
  return v;
}

function positiveIntOrZero(c: Json, key: string, fallback: number): number {
  const v = c[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new Df11Error('config', `config.${key} = ${JSON.stringify(v)} is not a non-negative integer`);
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

/** Phi-3's four: q|k|v and gate|up are single matrices in the checkpoint (rows in that order). */
export const FUSED_LAYER_LINEARS = ['self_attn.qkv_proj', 'self_attn.o_proj', 'mlp.gate_up_proj', 'mlp.down_proj'] as const;

/** A Gated DeltaNet layer's (qwen3_5 'linear_attention'): its mixer's four input projections and out_proj, then the MLP. */
export const LINEAR_LAYER_LINEARS = [
  'linear_attn.in_proj_qkv',
  'linear_attn.in_proj_z',
  'linear_attn.in_proj_b',
  'linear_attn.in_proj_a',
  'linear_attn.out_proj',
  'mlp.gate_proj',
  'mlp.up_proj',
  'mlp.down_proj',
] as const;

export type LayerLinear = (typeof LAYER_LINEARS)[number] | (typeof FUSED_LAYER_LINEARS)[number] | (typeof LINEAR_LAYER_LINEARS)[number];

/** Decoder layer `layer`'s linears as the checkpoint stores them, in DF11 concatenation order. */
export function layerLinears(spec: ModelSpec, layer: number): readonly LayerLinear[] {
  if (spec.layers[layer]!.mixer === 'linear') return LINEAR_LAYER_LINEARS;
  return spec.fusedProjections ? FUSED_LAYER_LINEARS : LAYER_LINEARS;
}

/**
 * The linears behind each projection the forward computes for layer `layer`, in output-row order. 'qkv' is
 * the mixer's input projection and 'o' its output: for a Gated DeltaNet layer in_proj_qkv | z | b | a and out_proj.
 */
export function projectionLinears(spec: ModelSpec, layer: number): Record<'qkv' | 'o' | 'gateUp' | 'down', readonly LayerLinear[]> {
  if (spec.layers[layer]!.mixer === 'linear') {
    return {
      qkv: ['linear_attn.in_proj_qkv', 'linear_attn.in_proj_z', 'linear_attn.in_proj_b', 'linear_attn.in_proj_a'],
      o: ['linear_attn.out_proj'],
      gateUp: ['mlp.gate_proj', 'mlp.up_proj'],
      down: ['mlp.down_proj'],
    };
  }
  return spec.fusedProjections
    ? { qkv: ['self_attn.qkv_proj'], o: ['self_attn.o_proj'], gateUp: ['mlp.gate_up_proj'], down: ['mlp.down_proj'] }
    : {
        qkv: ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj'], // rows: q | k | v
        o: ['self_attn.o_proj'],
        gateUp: ['mlp.gate_proj', 'mlp.up_proj'], // rows: gate | up
        down: ['mlp.down_proj'],
      };
}

/**
 * The RMSNorm weights of a layer (module names under model.layers.N). Llama layout: input_layernorm before
 * attention, post_attention_layernorm before the MLP. Gemma 3 (sandwich norms): input_layernorm,
 * post_attention_layernorm on the attention output, pre_feedforward_layernorm, post_feedforward_layernorm.
 */
export function layerNormNames(spec: ModelSpec): { input: string; preMlp: string; postAttention?: string; postMlp?: string } {
  return spec.sandwichNorms
    ? { input: 'input_layernorm', postAttention: 'post_attention_layernorm', preMlp: 'pre_feedforward_layernorm', postMlp: 'post_feedforward_layernorm' }
    : { input: 'input_layernorm', preMlp: 'post_attention_layernorm' };
}

/** [out, in] of every matrix (PyTorch Linear layout; the embedding is [vocab, hidden]). */
export function linearShapes(spec: ModelSpec): Record<LayerLinear | 'embed_tokens' | 'lm_head', [number, number]> {
  const { hiddenSize: h, intermediateSize: f, numHeads, numKvHeads, headDim, vocabSize } = spec;
  const la = linearAttentionDims(spec);
  return {
    // With an output gate, q_proj gives query then gate per head.
    'self_attn.q_proj': [numHeads * headDim * (spec.attentionOutputGate ? 2 : 1), h],
    'self_attn.k_proj': [numKvHeads * headDim, h],
    'self_attn.v_proj': [numKvHeads * headDim, h],
    'self_attn.qkv_proj': [(numHeads + 2 * numKvHeads) * headDim, h],
    'self_attn.o_proj': [h, numHeads * headDim],
    'mlp.gate_proj': [f, h],
    'mlp.up_proj': [f, h],
    'mlp.gate_up_proj': [2 * f, h],
    'mlp.down_proj': [h, f],
    'linear_attn.in_proj_qkv': [la.convDim, h],
    'linear_attn.in_proj_z': [la.valueDim, h],
    'linear_attn.in_proj_b': [la.valueHeads, h],
    'linear_attn.in_proj_a': [la.valueHeads, h],
    'linear_attn.out_proj': [h, la.valueDim],
    embed_tokens: [vocabSize, h],
    lm_head: [vocabSize, h],
  };
}

/**
 * A Gated DeltaNet's derived sizes (all 0 without linear layers): convDim = q | k | v channels of the conv
 * (2 key dims + the value dim), keyDim / valueDim summed over heads.
 */
export function linearAttentionDims(spec: ModelSpec): { convDim: number; keyDim: number; valueDim: number; valueHeads: number; convKernel: number } {
  const la = spec.linearAttention;
  if (!la) return { convDim: 0, keyDim: 0, valueDim: 0, valueHeads: 0, convKernel: 0 };
  const keyDim = la.keyHeads * la.keyHeadDim;
  const valueDim = la.valueHeads * la.valueHeadDim;
  return { convDim: 2 * keyDim + valueDim, keyDim, valueDim, valueHeads: la.valueHeads, convKernel: la.convKernel };
}

/**
 * Every parameter of the model with its shape, in canonical order (embedding, layers 0..n-1, final norm,
 * head). The head is listed only when not tied.
 */
export function parameterShapes(spec: ModelSpec): Map<string, number[]> {
  const shapes = linearShapes(spec);
  const norms = layerNormNames(spec);
  const out = new Map<string, number[]>();
  out.set('model.embed_tokens.weight', shapes.embed_tokens);
  for (let i = 0; i < spec.numLayers; i++) {
    const p = `model.layers.${i}`;
    out.set(`${p}.${norms.input}.weight`, [spec.hiddenSize]);
    const linear = spec.layers[i]!.mixer === 'linear';
    if (linear) {
      // Gated DeltaNet parameters that are not linears (f32 on the GPU, never in a DF11 unit).
      const la = linearAttentionDims(spec);
      out.set(`${p}.linear_attn.A_log`, [la.valueHeads]);
      out.set(`${p}.linear_attn.conv1d.weight`, [la.convDim, 1, la.convKernel]);
      out.set(`${p}.linear_attn.dt_bias`, [la.valueHeads]);
    }
    for (const l of layerLinears(spec, i)) {
      out.set(`${p}.${l}.weight`, shapes[l]);
      if (spec.attentionBias && (l === 'self_attn.q_proj' || l === 'self_attn.k_proj' || l === 'self_attn.v_proj')) {
        out.set(`${p}.${l}.bias`, [shapes[l][0]]);
      }
    }
    if (linear) out.set(`${p}.linear_attn.norm.weight`, [spec.linearAttention!.valueHeadDim]);
    if (spec.qkNorm && !linear) {
      out.set(`${p}.self_attn.q_norm.weight`, [spec.headDim]);
      out.set(`${p}.self_attn.k_norm.weight`, [spec.headDim]);
    }
    for (const norm of [norms.postAttention, norms.preMlp, norms.postMlp]) {
      if (norm) out.set(`${p}.${norm}.weight`, [spec.hiddenSize]);
    }
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
    // Look the name up as layer 0 of a model made of that one layer.
    return parameterShapes({ ...spec, numLayers: 1, layers: [spec.layers[Number(layer[1])]!] }).get(tensorName.replace(/^model\.layers\.\d+\./, 'model.layers.0.'));
  }
  return layer ? undefined : parameterShapes({ ...spec, numLayers: 0 }).get(tensorName);
}

/**
 * The name the runtime uses for a checkpoint tensor, or undefined for a tensor it never reads. Gemma 3
 * multimodal checkpoints (model_type 'gemma3') keep the text model under `language_model.model.*` and
 * `language_model.lm_head.*` (transformers 4.x, the official DF11 gemma-3 repos) or `model.language_model.*`
 * (transformers 5); their vision tower and projector are skipped. Every other name is used as is.
 */
export function textWeightName(config: Record<string, unknown>, name: string): string | undefined {
  // Qwen3.5 checkpoints also carry multi-token-prediction weights (mtp.*), which HF ignores for generation.
  if (config.model_type === 'qwen3_5_text') return name.startsWith('mtp.') ? undefined : name;
  if (config.model_type === 'qwen3_5') {
    if (name.startsWith('model.language_model.')) return `model.${name.slice('model.language_model.'.length)}`;
    return /^(mtp|model\.visual)\./.test(name) ? undefined : name;
  }
  if (config.model_type !== 'gemma3') return name;
  for (const [from, to] of [
    ['language_model.model.', 'model.'],
    ['model.language_model.', 'model.'],
    ['language_model.lm_head.', 'lm_head.'],
  ] as const) {
    if (name.startsWith(from)) return to + name.slice(from.length);
  }
  return /^(model\.)?(vision_tower|multi_modal_projector)\./.test(name) ? undefined : name;
}

/** The module names a checkpoint may store a runtime module under (the inverse of textWeightName). */
export function storedModuleNames(config: Record<string, unknown>, module: string): string[] {
  if (config.model_type === 'qwen3_5') return module.startsWith('model.') ? [module, `model.language_model.${module.slice('model.'.length)}`] : [module];
  if (config.model_type !== 'gemma3') return [module];
  if (module.startsWith('model.')) return [module, `language_model.${module}`, `model.language_model.${module.slice('model.'.length)}`];
  return module === 'lm_head' ? [module, 'language_model.lm_head'] : [module];
}

/** The official DFloat11 pattern: one unit per decoder layer (its linears as stored), the head and the embedding on their own. */
export function defaultPattern(spec: ModelSpec): Record<string, string[]> {
  // Layers with different linears (qwen3_5: Gated DeltaNet and attention layers) get one entry per kind, by index.
  const kinds = new Map<string, number[]>();
  for (let i = 0; i < spec.numLayers; i++) {
    const key = layerLinears(spec, i).join(',');
    const layers = kinds.get(key);
    if (layers) layers.push(i);
    else kinds.set(key, [i]);
  }
  const pattern: Record<string, string[]> = {};
  for (const [key, layers] of kinds) {
    pattern[kinds.size === 1 ? 'model\\.layers\\.\\d+' : `model\\.layers\\.(?:${layers.join('|')})`] = key.split(',');
  }
  if (!spec.tieWordEmbeddings) pattern.lm_head = [];
  pattern['model\\.embed_tokens'] = [];
  return pattern;
}
