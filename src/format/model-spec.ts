/**
 * What the runtime needs to know about a decoder-only model, independent of how the HF config spells it.
 * Filled from config.json by `specFromConfig` (src/format/config.ts). One spec type for every
 * supported architecture: differences are flags and numbers, never separate code paths.
 */
export type Architecture = 'llama' | 'mistral' | 'qwen2' | 'qwen3';

export interface RopeSpec {
  theta: number;
  /** 'default' or Llama 3.x frequency scaling. */
  type: 'default' | 'llama3';
  /** Present when type === 'llama3'. */
  llama3?: {
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalMaxPositionEmbeddings: number;
  };
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
  rope: RopeSpec;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (qwen2, or attention_bias: true). */
  attentionBias: boolean;
  /** Per-head RMSNorm on q and k before RoPE (qwen3). */
  qkNorm: boolean;
  eosTokenIds: number[];
  bosTokenId: number | null;
}
