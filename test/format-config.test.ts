import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { codeOfCall } from '../src/testing/error-code.ts';
import { linearShapes, parameterShapes, specFromConfig, weightShape } from '../src/format/config.ts';

const configFile = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8'));
const config = (dir: string): Record<string, unknown> => configFile(`${dir}/config.json`);

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
      ropes: [{ theta: 10000, type: 'default', rotaryDim: 64 }],
      layers: Array(8).fill({ mixer: 'attention', rope: 0, window: 0 }),
      maxPositionEmbeddings: 2048,
      tieWordEmbeddings: false,
      attentionBias: false,
      qkNorm: false,
      fusedProjections: false,
      normWeightOffset: 0,
      sandwichNorms: false,
      activation: 'silu',
      attentionOutputGate: false,
      attentionScale: 1 / 8,
      embedScale: 1,
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
      ropes: [{ theta: 500000, type: 'default', rotaryDim: 16 }],
      eosTokenIds: [2],
      bosTokenId: 1,
      headDim: 16,
    });
    const qwen2 = specFromConfig(config('test/fixtures/hf/tiny-qwen2'));
    // Qwen2 configs carry no head_dim: hidden / heads.
    expect(qwen2).toMatchObject({ architecture: 'qwen2', attentionBias: true, qkNorm: false, headDim: 16, eosTokenIds: [], rmsNormEps: 1e-6 });
    const qwen3 = specFromConfig(config('test/fixtures/hf/tiny-qwen3'));
    expect(qwen3).toMatchObject({ architecture: 'qwen3', attentionBias: false, qkNorm: true, headDim: 32, ropes: [{ theta: 1e6, type: 'default' }] });
    // The DF11 config is the HF config plus dfloat11_config.
    expect(specFromConfig(config('test/fixtures/official-df11/tiny-qwen3'))).toEqual(qwen3);
  });

  it('reads llama3 rope scaling in both spellings', () => {
    const old = specFromConfig(llama32);
    expect(old.ropes).toEqual([{
      theta: 500000,
      type: 'llama3',
      rotaryDim: 64,
      llama3: { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
    }]);
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
    expect(spec).toMatchObject({ numKvHeads: 32, headDim: 64, ropes: [{ theta: 10000, type: 'default' }], tieWordEmbeddings: false });
  });

  it('rejects unsupported architectures and rope types, naming them', () => {
    const qwen35 = config('test/fixtures/hf/tiny-qwen3-5-text');
    expect(codeOfCall(() => specFromConfig({ ...qwen35, model_type: 'qwen3_5_moe_text' }))).toBe('unsupported-architecture');
    expect(() => specFromConfig({ ...qwen35, model_type: 'qwen3_5_moe_text' })).toThrow(/qwen3_5_moe_text.*mixture-of-experts/);
    expect(() => specFromConfig({ ...qwen35, layer_types: ['linear_attention', 'sliding_attention', 'linear_attention', 'full_attention'] })).toThrow(/layer_types 'sliding_attention'/);
    expect(() => specFromConfig({ ...config('test/fixtures/hf/tiny-qwen3'), layer_types: Array(2).fill('linear_attention') })).toThrow(/layer_types 'linear_attention'/);
    for (const [key, value] of [['hidden_act', 'gelu'], ['attn_output_gate', false], ['num_experts', 8], ['attention_bias', true]] as const) {
      expect(codeOfCall(() => specFromConfig({ ...qwen35, [key]: value })), key).toBe('unsupported-architecture');
      expect(() => specFromConfig({ ...qwen35, [key]: value })).toThrow(new RegExp(key));
    }
    expect(codeOfCall(() => specFromConfig({ ...qwen35, linear_key_head_dim: 512 }))).toBe('unsupported-architecture');
    expect(codeOfCall(() => specFromConfig({ ...qwen35, linear_num_value_heads: 3 }))).toBe('config');
    expect(() => specFromConfig({ ...llama32, model_type: 'gpt2' })).toThrow(/'gpt2' is not supported/);
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
    for (const dir of ['models/stories-15m', 'models/stories-micro', ...['llama-tied', 'qwen2', 'qwen3', 'gemma3', 'gemma3-mixed', 'phi3', 'smollm3', 'mistral-swa', 'qwen3-5-text'].map((f) => `test/fixtures/hf/tiny-${f}`)]) {
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

describe('specFromConfig: per-layer attributes of the newer architectures', () => {
  it('Qwen3.5: Gated DeltaNet and gated attention layers, (1+w) norms, partial rotary; the multimodal config reads its text_config', () => {
    const tiny = specFromConfig(config('test/fixtures/hf/tiny-qwen3-5-text'));
    expect(tiny.layers.map((l) => l.mixer)).toEqual(['linear', 'linear', 'linear', 'attention']);
    expect(tiny.layers[0]).toEqual({ mixer: 'linear', rope: null, window: 0 });
    expect(tiny).toMatchObject({
      architecture: 'qwen3_5',
      linearAttention: { convKernel: 4, keyHeads: 2, valueHeads: 4, keyHeadDim: 16, valueHeadDim: 16 },
      attentionOutputGate: true,
      qkNorm: true,
      normWeightOffset: 1,
      ropes: [{ theta: 10000, type: 'default', rotaryDim: 4 }],
      attentionScale: 1 / 4,
    });
    const q2b = specFromConfig(configFile('test/fixtures/configs/qwen3.5-2b.json'));
    expect(q2b).toMatchObject({ hiddenSize: 2048, numLayers: 24, headDim: 256, tieWordEmbeddings: true, eosTokenIds: [248044], ropes: [{ theta: 1e7, rotaryDim: 64 }] });
    expect(q2b.layers.filter((l) => l.mixer === 'attention').length).toBe(6);
    // Without layer_types: every full_attention_interval-th layer is full attention.
    const { layer_types: _, ...legacy } = config('test/fixtures/hf/tiny-qwen3-5-text');
    expect(specFromConfig({ ...legacy, full_attention_interval: 2 }).layers.map((l) => l.mixer)).toEqual(['linear', 'attention', 'linear', 'attention']);
    // Qwen3_5TextConfig's default partial_rotary_factor is 0.25 (head_dim 16: 4 rotary dims).
    const { rope_parameters: __, partial_rotary_factor: ___, ...bare } = config('test/fixtures/hf/tiny-qwen3-5-text');
    expect(specFromConfig(bare).ropes[0]!.rotaryDim).toBe(4);
  });

  it('Mistral: sliding_window applies to every layer (it used to be ignored)', () => {
    const spec = specFromConfig(config('test/fixtures/hf/tiny-mistral-swa'));
    expect(spec.layers).toEqual([{ mixer: 'attention', rope: 0, window: 8 }, { mixer: 'attention', rope: 0, window: 8 }]);
    expect(specFromConfig({ ...config('test/fixtures/hf/tiny-mistral-swa'), sliding_window: null }).layers[0]).toEqual({ mixer: 'attention', rope: 0, window: 0 });
  });

  it('Qwen2: use_sliding_window slides the layers from max_window_layers on; layer_types wins when present', () => {
    const { layer_types: _, ...qwen2 } = config('test/fixtures/hf/tiny-qwen2');
    const spec = specFromConfig({ ...qwen2, use_sliding_window: true, sliding_window: 16, max_window_layers: 1 });
    expect(spec.layers.map((l) => l.window)).toEqual([0, 16]);
    const typed = specFromConfig({ ...qwen2, layer_types: ['sliding_attention', 'full_attention'], sliding_window: 4 });
    expect(typed.layers.map((l) => l.window)).toEqual([4, 0]);
  });

  it('SmolLM3: no_rope_layers turns RoPE off per layer', () => {
    const spec = specFromConfig(config('test/fixtures/hf/tiny-smollm3'));
    expect(spec).toMatchObject({ architecture: 'smollm3', tieWordEmbeddings: true, ropes: [{ theta: 5e6, type: 'default', rotaryDim: 16 }] });
    expect(spec.layers.map((l) => l.rope)).toEqual([0, 0, 0, null]);
  });

  it('Phi-3: fused projections, partial rotary, and longrope in the transformers 4.x spelling (Phi-4-mini)', () => {
    const spec = specFromConfig(config('test/fixtures/hf/tiny-phi3'));
    expect(spec).toMatchObject({ architecture: 'phi3', fusedProjections: true, headDim: 16, ropes: [{ rotaryDim: 12, type: 'default' }] });
    expect(parameterShapes(spec).get('model.layers.0.self_attn.qkv_proj.weight')).toEqual([128, 64]);
    const phi4 = specFromConfig(configFile('test/fixtures/configs/phi-4-mini.json'));
    const rope = phi4.ropes[0]!;
    expect(rope).toMatchObject({ type: 'longrope', rotaryDim: 96, theta: 10000 });
    expect(rope.longrope!.longFactor).toHaveLength(48);
    expect(rope.longrope!.attentionFactor).toBeCloseTo(Math.sqrt(1 + Math.log(32) / Math.log(4096)), 12);
    expect(phi4.layers[0]).toEqual({ mixer: 'attention', rope: 0, window: 262144 });
  });

  it('Gemma 3: layer types, two RoPE tables, (1 + w) sandwich norms, GeGLU, query_pre_attn_scalar, scaled embedding', () => {
    const spec = specFromConfig(config('test/fixtures/hf/tiny-gemma3-mixed'));
    expect(spec).toMatchObject({
      architecture: 'gemma3',
      tieWordEmbeddings: true,
      qkNorm: true,
      normWeightOffset: 1,
      sandwichNorms: true,
      activation: 'gelu_tanh',
      attentionScale: 1 / 4,
      embedScale: 8,
      ropes: [
        { theta: 1e6, type: 'linear', linearFactor: 8, rotaryDim: 16 },
        { theta: 1e4, type: 'default', rotaryDim: 16 },
      ],
    });
    expect(spec.layers.map((l) => `${l.rope}/${l.window}`)).toEqual(['1/8', '1/8', '1/8', '1/8', '1/8', '0/0', '1/8']);
    // The published Gemma-3-1B config (transformers 4.x: rope_local_base_freq, sliding_window_pattern).
    const g1b = specFromConfig(configFile('test/fixtures/configs/gemma-3-1b.json'));
    expect(g1b).toMatchObject({ headDim: 256, numKvHeads: 1, vocabSize: 262144, tieWordEmbeddings: true, attentionScale: 1 / 16 });
    expect(g1b.ropes).toEqual([{ theta: 1e6, type: 'default', rotaryDim: 256 }, { theta: 1e4, type: 'default', rotaryDim: 256 }]);
    expect(g1b.layers.filter((l) => l.window === 0).length).toBe(4); // layers 5, 11, 17, 23 of 26
    expect(g1b.layers[5]).toEqual({ mixer: 'attention', rope: 0, window: 0 });
    expect(g1b.layers[0]).toEqual({ mixer: 'attention', rope: 1, window: 512 });
  });

  it('Gemma 3 multimodal: the text model from text_config', () => {
    const text = config('test/fixtures/hf/tiny-gemma3-mixed');
    const wrapped = { model_type: 'gemma3', architectures: ['Gemma3ForConditionalGeneration'], text_config: text, vision_config: { model_type: 'siglip_vision_model' } };
    expect(specFromConfig(wrapped)).toEqual(specFromConfig(text));
    expect(codeOfCall(() => specFromConfig({ model_type: 'gemma3' }))).toBe('config');
  });

  it('names every unimplemented field as unsupported-architecture', () => {
    const gemma = config('test/fixtures/hf/tiny-gemma3');
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...gemma, final_logit_softcapping: 30 }, /final_logit_softcapping/],
      [{ ...gemma, attn_logit_softcapping: 50 }, /attn_logit_softcapping/],
      [{ ...gemma, use_bidirectional_attention: true }, /use_bidirectional_attention/],
      [{ ...gemma, hidden_activation: 'gelu' }, /hidden_activation 'gelu'/],
      [{ ...gemma, layer_types: ['sliding_attention', 'chunked_attention', 'full_attention'] }, /chunked_attention/],
      [{ ...llama32, attention_chunk_size: 8192 }, /attention_chunk_size/],
      [{ ...llama32, mlp_bias: true }, /mlp_bias/],
      [{ ...llama32, rope_scaling: { rope_type: 'dynamic', factor: 2 } }, /dynamic/],
      [{ ...config('test/fixtures/hf/tiny-phi3'), attention_bias: true }, /attention_bias/],
      [{ ...config('test/fixtures/hf/tiny-phi3'), lm_head_bias: true }, /lm_head_bias/],
    ];
    for (const [c, message] of cases) {
      expect(codeOfCall(() => specFromConfig(c)), String(message)).toBe('unsupported-architecture');
      expect(() => specFromConfig(c)).toThrow(message);
    }
  });
});
