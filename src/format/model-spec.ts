/**
 * What the runtime needs to know about a decoder-only model, independent of how the HF config spells it.
 * Filled from config.json by `specFromConfig` (src/format/config.ts). One spec type for every
 * supported architecture: differences are flags, numbers and per-layer attributes, never separate code paths.
 */
export type Architecture = 'llama' | 'mistral' | 'qwen2' | 'qwen3' | 'gemma3' | 'phi3' | 'smollm3' | 'qwen3_5';

export interface RopeSpec {
  theta: number;
  /** 'default', Llama 3.x frequency scaling, linear position scaling, or Phi-3's longrope. */
  type: 'default' | 'llama3' | 'linear' | 'longrope';
  /**
   * Leading dimensions of each head that rotate (head_dim × partial_rotary_factor, even); the rest of the
   * head passes through unrotated. The cos/sin table has rotaryDim / 2 frequencies.
   */
  rotaryDim: number;
  /** Present when type === 'llama3'. */
  llama3?: {
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalMaxPositionEmbeddings: number;
  };
  /** type === 'linear': inverse frequencies divided by this factor. */
  linearFactor?: number;
  /**
   * type === 'longrope': inverse frequencies divided by short (positions < original max) or long factors
   * (one per frequency), and cos/sin multiplied by attentionFactor.
   */
  longrope?: {
    shortFactor: number[];
    longFactor: number[];
    originalMaxPositionEmbeddings: number;
    attentionFactor: number;
  };
}

/** The gated MLP's activation: act(gate) * up. */
export type Activation = 'silu' | 'gelu_tanh';

/**
 * A layer's token mixer: softmax attention over the KV cache, or a Gated DeltaNet linear-attention block
 * (qwen3_5: causal depthwise conv1d with a rolling state, then the gated delta rule on a fixed-size
 * recurrent state per value head, gated RMSNorm; see LinearAttentionSpec).
 */
export type Mixer = 'attention' | 'linear';

/**
 * Gated DeltaNet sizes (Qwen3.5's linear_* config fields). in_proj_qkv gives q | k | v (key, key, value
 * dims: convDim channels) that go through the conv; in_proj_z the output gate (value dim); in_proj_b and
 * in_proj_a one scalar per value head (beta = sigmoid(b), decay g = -exp(A_log) softplus(a + dt_bias)).
 * Each key head serves valueHeads / keyHeads consecutive value heads.
 */
export interface LinearAttentionSpec {
  convKernel: number;
  keyHeads: number;
  valueHeads: number;
  keyHeadDim: number;
  valueHeadDim: number;
}

/** What differs between the layers of one model. */
export interface LayerSpec {
  mixer: Mixer;
  /** Index into ModelSpec.ropes of this layer's RoPE table, or null: no RoPE (SmolLM3's no_rope_layers). */
  rope: number | null;
  /** Sliding-window attention: a query at position p sees keys max(0, p − window + 1)..p. 0 = full causal. */
  window: number;
}

export interface ModelSpec {
  architecture: Architecture;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  /** The distinct RoPE tables (Gemma 3: [global, local]); layers pick one by index. */
  ropes: RopeSpec[];
  /** (numLayers) */
  layers: LayerSpec[];
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (qwen2, or attention_bias: true). */
  attentionBias: boolean;
  /** Per-head RMSNorm on q and k before RoPE (qwen3, gemma3). */
  qkNorm: boolean;
  /** q|k|v and gate|up are single fused matrices in the checkpoint (phi3: qkv_proj, gate_up_proj). */
  fusedProjections: boolean;
  /** Every RMSNorm multiplies by (normWeightOffset + w): 0, or 1 for Gemma's (1 + w). */
  normWeightOffset: 0 | 1;
  /** Extra norms on the attention and MLP outputs before the residual adds (gemma3: 4 norms per layer). */
  sandwichNorms: boolean;
  activation: Activation;
  /** Softmax scale of q·k: 1/sqrt(head_dim), or query_pre_attn_scalar^-0.5 (gemma3). */
  attentionScale: number;
  /** Present when a layer's mixer is 'linear' (qwen3_5). */
  linearAttention?: LinearAttentionSpec;
  /**
   * q_proj gives, per head, the query and then an output gate (head_dim each): the attention output is
   * multiplied by sigmoid(gate) before o_proj (qwen3_5).
   */
  attentionOutputGate: boolean;
  /** The embedding rows are multiplied by this (gemma3: sqrt(hidden_size)); 1 elsewhere. */
  embedScale: number;
  eosTokenIds: number[];
  bosTokenId: number | null;
}
