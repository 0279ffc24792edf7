import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { codeOfCall } from '../src/testing/error-code.ts';
import { linearShapes, parameterShapes, specFromConfig, weightShape } from '../src/format/config.ts';

const config = (dir: string): Record<string, unknown> => JSON.parse(readFileSync(`${dir}/config.json`, 'utf8'));

/** Llama-3.2-1B's config.json as published (transformers 4.x spelling: rope_theta + rope_scaling). */
const llama32 = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  bos_token_id: 128000,
  eos_token_id: 128001,
  head_dim: 64,
  hidden_act: 'silu',
  hidden_size: 2048,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  vocab_size: 128256,
};

describe('specFromConfig', () => {
  it('reads the bundled llama models', () => {
    expect(specFromConfig(config('models/stories-15m'))).toEqual({
      architecture: 'llama',
      vocabSize: 4096,
      hiddenSize: 384,
      intermediateSize: 1024,
      numLayers: 8,
      numHeads: 6,
      numKvHeads: 2,
      headDim: 64,
      rmsNormEps: 1e-5,
      rope: { theta: 10000, type: 'default' },
      maxPositionEmbeddings: 2048,
      tieWordEmbeddings: false,
      attentionBias: false,
      qkNorm: false,
      eosTokenIds: [0],
      bosTokenId: null,
    });
    const micro = specFromConfig(config('models/stories-micro'));
    expect(micro).toMatchObject({ hiddenSize: 96, headDim: 24, numLayers: 2, numHeads: 4, tieWordEmbeddings: true, maxPositionEmbeddings: 512 });
  });

  it('reads the tiny fixtures: tied llama, qwen2 biases, qwen3 q/k norm', () => {
    expect(specFromConfig(config('test/fixtures/hf/tiny-llama-tied'))).toMatchObject({
      architecture: 'llama',
      tieWordEmbeddings: true,
      rope: { theta: 500000, type: 'default' },
      eosTokenIds: [2],
      bosTokenId: 1,
      headDim: 16,
    });
    const qwen2 = specFromConfig(config('test/fixtures/hf/tiny-qwen2'));
    // Qwen2 configs carry no head_dim: hidden / heads.
    expect(qwen2).toMatchObject({ architecture: 'qwen2', attentionBias: true, qkNorm: false, headDim: 16, eosTokenIds: [], rmsNormEps: 1e-6 });
    const qwen3 = specFromConfig(config('test/fixtures/hf/tiny-qwen3'));
    expect(qwen3).toMatchObject({ architecture: 'qwen3', attentionBias: false, qkNorm: true, headDim: 32, rope: { theta: 1e6, type: 'default' } });
    // The DF11 config is the HF config plus dfloat11_config.
    expect(specFromConfig(config('test/fixtures/official-df11/tiny-qwen3'))).toEqual(qwen3);
  });

  it('reads llama3 rope scaling in both spellings', () => {
    const old = specFromConfig(llama32);
    expect(old.rope).toEqual({
      theta: 500000,
      type: 'llama3',
      llama3: { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
    });
    expect(old).toMatchObject({ numKvHeads: 8, headDim: 64, bosTokenId: 128000, eosTokenIds: [128001], tieWordEmbeddings: true });
    const { rope_scaling, rope_theta, ...rest } = llama32;
    const newer = specFromConfig({ ...rest, rope_parameters: { ...rope_scaling, rope_theta } });
    expect(newer).toEqual(old);
    // The pre-rope_type spelling ("type").
    const { rope_type: _, ...scaling } = rope_scaling;
    expect(specFromConfig({ ...llama32, rope_scaling: { ...scaling, type: 'llama3' } })).toEqual(old);
  });

  it('takes eos as an int, a list or null, and applies HF defaults', () => {
    expect(specFromConfig({ ...llama32, eos_token_id: [128001, 128008, 128009] }).eosTokenIds).toEqual([128001, 128008, 128009]);
    expect(specFromConfig({ ...llama32, eos_token_id: null }).eosTokenIds).toEqual([]);
    const { num_key_value_heads, head_dim, rope_scaling, rope_theta, tie_word_embeddings, ...bare } = llama32;
    const spec = specFromConfig(bare);
    expect(spec).toMatchObject({ numKvHeads: 32, headDim: 64, rope: { theta: 10000, type: 'default' }, tieWordEmbeddings: false });
  });

  it('rejects unsupported architectures and rope types, naming them', () => {
    const gemma = config('test/fixtures/hf/tiny-gemma3');
    expect(() => specFromConfig(gemma)).toThrow(/gemma3_text/);
    expect(codeOfCall(() => specFromConfig(gemma))).toBe('unsupported-architecture');
    const yarn = { ...llama32, rope_scaling: { rope_type: 'yarn', factor: 4 } };
    expect(codeOfCall(() => specFromConfig(yarn))).toBe('unsupported-architecture');
    expect(() => specFromConfig(yarn)).toThrow(/yarn/);
  });

  it('rejects missing or invalid fields as config errors', () => {
    const { hidden_size, ...noHidden } = llama32;
    expect(codeOfCall(() => specFromConfig(noHidden))).toBe('config');
    expect(() => specFromConfig(noHidden)).toThrow(/hidden_size/);
    expect(codeOfCall(() => specFromConfig({ ...llama32, num_attention_heads: 0 }))).toBe('config');
    expect(codeOfCall(() => specFromConfig({ ...llama32, num_key_value_heads: 5 }))).toBe('config');
    expect(codeOfCall(() => specFromConfig({ ...llama32, eos_token_id: 'x' }))).toBe('config');
    expect(codeOfCall(() => specFromConfig({ ...llama32, rope_scaling: { rope_type: 'llama3', factor: 8 } }))).toBe('config');
    expect(codeOfCall(() => specFromConfig([]))).toBe('config');
    const { model_type, ...untyped } = llama32;
    expect(codeOfCall(() => specFromConfig(untyped))).toBe('config');
  });
});

describe('weight shapes', () => {
  it('match every tensor stored in the HF fixtures', () => {
    for (const dir of ['models/stories-15m', 'models/stories-micro', 'test/fixtures/hf/tiny-llama-tied', 'test/fixtures/hf/tiny-qwen2', 'test/fixtures/hf/tiny-qwen3']) {
      const spec = specFromConfig(config(dir));
      const bytes = readFileSync(`${dir}/model.safetensors`);
      const n = Number(bytes.readBigUInt64LE(0));
      const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { shape: number[] }>;
      delete header.__metadata__;
      const stored = new Map(Object.entries(header).map(([k, v]) => [k, v.shape]));
      expect(new Map([...parameterShapes(spec)]), dir).toEqual(stored);
      for (const [name, shape] of stored) expect(weightShape(spec, name), name).toEqual(shape);
    }
  });

  it('knows no shape for parameters the architecture lacks', () => {
    const spec = specFromConfig(config('models/stories-15m'));
    expect(weightShape(spec, 'model.layers.0.self_attn.q_norm.weight')).toBeUndefined();
    expect(weightShape(spec, 'model.layers.8.mlp.up_proj.weight')).toBeUndefined();
    expect(linearShapes(spec)['self_attn.k_proj']).toEqual([128, 384]);
  });
});
