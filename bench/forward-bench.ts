/**
 * Forward benchmark: prefill and decode tokens/s of the GPU forward in BF16 and DF11 weight modes, in
 * the same run, for stories-15m (models/stories-15m) and a synthetic Llama of 1B shape (hidden 2048,
 * 16 layers, 32 heads / 8 KV heads, intermediate 8192, vocab 32000, untied head, N(0, 0.02) BF16
 * weights generated here from a seed). stories-15m comes from models/stories-15m or, when that is absent
 * (a checkout trimmed to travel to the GPU machine), from test/fixtures/official-df11/stories-15m. Prints one JSON line per (model, mode), then one line per model
 * with the DF11/BF16 decode ratio.
 *
 *   npx tsx bench/forward-bench.ts --small          # smoke test on SwiftShader (tiny synthetic model)
 *   node bench/build.mjs && bash .gpu/run node dist-bench/forward-bench.mjs   # on the GPU machine
 *
 * The synthetic model's layers share one set of random matrices (and so one compressed DF11 unit):
 * bandwidth and decode work per layer are what a real model's are, and generation + compression stay
 * at a few seconds instead of a minute. Timing is wall clock around whole generator calls (each decode
 * step includes reading the logits back), medians over the measured steps.
 * Options: --prompt N (prefill tokens, default 128), --decode N (decode steps, default 32),
 * --models stories-15m,llama-1b,llama-8b,tiny (which to run; default stories-15m,llama-1b; --small runs tiny),
 * --resident 0,25,50,100 (DF11 runs with that percent of the layers kept resident in BF16, decoded once at
 * load; 100 = every layer and the LM head, the planner's last step; default 0): one line per percent, and
 * the model's ratio line gives each one's decode tok/s over BF16's. Every line carries the bytes the memory
 * layout planned and the bytes allocated (equal by construction; test/layout.test.ts checks it).
 *
 * llama-8b is the Llama-3.1-8B shape (hidden 4096, 32 layers, 32/8 heads, intermediate 14336, vocab
 * 128256): its weights are drawn from a pool of 2^20 N(0, 0.02) values (same exponent statistics, ~10x
 * faster to generate than per-weight Box-Muller), then compressed here (~1.3 G weights: about 15 s to
 * generate and 30 s to compress on a busy 2-core machine).
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Df11Error } from '../src/errors.ts';
import { LAYER_LINEARS, linearShapes, type LayerLinear } from '../src/format/config.ts';
import { encodeUnit } from '../src/format/df11-encoder.ts';
import type { Df11Unit } from '../src/format/df11-types.ts';
import type { ModelSpec } from '../src/format/model-spec.ts';
import { openModel, type ModelWeights, type WeightLocation } from '../src/format/model-reader.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { createGenerator } from '../src/model/generator.ts';
import type { WeightMode } from '../src/model/layout.ts';
import { normalBf16 } from '../src/testing/random-weights.ts';
import { emit, median, sig } from './report.ts';
import { benchShaders } from './shaders.ts';

const { values } = parseArgs({
  options: {
    small: { type: 'boolean', default: false },
    prompt: { type: 'string' },
    decode: { type: 'string' },
    models: { type: 'string' },
    resident: { type: 'string', default: '0' },
  },
});
const small = values.small;
const promptTokens = Number(values.prompt ?? (small ? 8 : 128));
const decodeSteps = Number(values.decode ?? (small ? 4 : 32));
const WARMUP_DECODES = small ? 1 : 4;
const residentPercents = values.resident.split(',').map((p) => {
  const x = Number(p);
  if (!Number.isFinite(x) || x < 0 || x > 100) throw new Df11Error('bad-request', `--resident takes percents 0..100, got '${p}'`);
  return x;
});

/** n BF16 weights drawn (xorshift32) from a pool of 2^20 N(0, 0.02) values: ~10 ns a weight, for multi-GB models. */
function pooledNormalBf16(n: number, seed: number): Uint16Array {
  const pool = normalBf16(1 << 20, seed);
  let x = Math.imul(seed, 0x9e3779b1) || 1;
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = pool[(x >>> 12) & 0xfffff]!;
  }
  return out;
}

/** A Llama spec with the given sizes (RoPE default, theta 10000). */
function llamaSpec(s: { hidden: number; layers: number; heads: number; kvHeads: number; intermediate: number; vocab: number }): ModelSpec {
  return {
    architecture: 'llama',
    vocabSize: s.vocab,
    hiddenSize: s.hidden,
    intermediateSize: s.intermediate,
    numLayers: s.layers,
    numHeads: s.heads,
    numKvHeads: s.kvHeads,
    headDim: s.hidden / s.heads,
    rmsNormEps: 1e-5,
    rope: { theta: 10000, type: 'default' },
    maxPositionEmbeddings: 4096,
    tieWordEmbeddings: false,
    attentionBias: false,
    qkNorm: false,
    eosTokenIds: [],
    bosTokenId: null,
  };
}

/**
 * The synthetic model behind the ModelWeights interface, in both encodings: 'bf16' serves plain tensors,
 * 'df11' serves DF11 units (one compressed layer unit reused, renamed, for every layer).
 */
function syntheticModel(spec: ModelSpec, seed: number, pooled = false): { bf16: ModelWeights; df11: ModelWeights; seconds: { generate: number; compress: number } } {
  const t0 = performance.now();
  const draw = pooled ? pooledNormalBf16 : normalBf16;
  const shapes = linearShapes(spec);
  const layer = new Map<LayerLinear, Uint16Array>();
  LAYER_LINEARS.forEach((l, i) => layer.set(l, draw(shapes[l][0] * shapes[l][1], seed + i)));
  const embed = draw(spec.vocabSize * spec.hiddenSize, seed + 100);
  const head = draw(spec.vocabSize * spec.hiddenSize, seed + 101);
  const ones = new Uint16Array(spec.hiddenSize).fill(0x3f80); // 1.0 in BF16
  const generate = (performance.now() - t0) / 1000;

  const t1 = performance.now();
  const layerUnit = encodeUnit('model.layers.0', LAYER_LINEARS.map((l) => ({ name: `model.layers.0.${l}.weight`, shape: shapes[l], bits: layer.get(l)! })));
  const embedUnit = encodeUnit('model.embed_tokens', [{ name: 'model.embed_tokens.weight', shape: shapes.embed_tokens, bits: embed }]);
  const headUnit = encodeUnit('lm_head', [{ name: 'lm_head.weight', shape: shapes.lm_head, bits: head }]);
  const compress = (performance.now() - t1) / 1000;

  const matrixBits = (name: string): Uint16Array | undefined => {
    if (name === 'model.embed_tokens.weight') return embed;
    if (name === 'lm_head.weight') return head;
    const m = /^model\.layers\.\d+\.(.+)\.weight$/.exec(name);
    return m ? layer.get(m[1] as LayerLinear) : undefined;
  };
  const isNorm = (name: string): boolean => /(layernorm|^model\.norm)\.weight$/.test(name);
  const bytes = (bits: Uint16Array): Uint8Array => new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength);
  const readTensor: ModelWeights['readTensor'] = async (name) => {
    if (isNorm(name)) return { dtype: 'BF16', shape: [spec.hiddenSize], data: bytes(ones) };
    const bits = matrixBits(name);
    if (!bits) throw new Df11Error('missing-tensor', `synthetic model has no tensor '${name}'`);
    return { dtype: 'BF16', shape: [bits.length / spec.hiddenSize, spec.hiddenSize], data: bytes(bits) };
  };
  const unitOf = (name: string): string | undefined => {
    if (name === 'model.embed_tokens.weight') return 'model.embed_tokens';
    if (name === 'lm_head.weight') return 'lm_head';
    return /^(model\.layers\.\d+)\.[a-z_]+\.[a-z_]+_proj\.weight$/.exec(name)?.[1];
  };
  const readUnit = async (unit: string): Promise<Df11Unit> => {
    if (unit === 'model.embed_tokens') return embedUnit;
    if (unit === 'lm_head') return headUnit;
    const rename = (s: string) => s.replace(/^model\.layers\.0\./, `${unit}.`);
    return { ...layerUnit, name: unit, matrices: layerUnit.matrices.map((m) => ({ ...m, name: rename(m.name) })) };
  };
  const layerUnits = Array.from({ length: spec.numLayers }, (_, i) => `model.layers.${i}`);
  const view = (format: 'bf16' | 'df11'): ModelWeights => ({
    spec,
    config: { dtype: 'bfloat16' },
    format,
    unitNames: format === 'df11' ? ['model.embed_tokens', ...layerUnits, 'lm_head'] : [],
    tensorNames: [],
    readUnit,
    readTensor,
    locate(name): WeightLocation | undefined {
      const unit = format === 'df11' ? unitOf(name) : undefined;
      if (unit) {
        const offsets = unit === 'model.embed_tokens' ? embedUnit : unit === 'lm_head' ? headUnit : layerUnit;
        const m = offsets.matrices.find((x) => x.name.replace(/^model\.layers\.0\./, `${unit}.`) === name)!;
        return { kind: 'df11', unit, matrix: { ...m, name } };
      }
      if (isNorm(name)) return { kind: 'tensor', name, dtype: 'BF16', shape: [spec.hiddenSize] };
      const bits = matrixBits(name);
      return bits ? { kind: 'tensor', name, dtype: 'BF16', shape: [bits.length / spec.hiddenSize, spec.hiddenSize] } : undefined;
    },
  });
  return { bf16: view('bf16'), df11: view('df11'), seconds: { generate, compress } };
}

interface Run {
  name: string;
  model: (mode: WeightMode) => Promise<ModelWeights>;
  extra?: Record<string, unknown>;
}

/** Decode tok/s of `run` in `mode`; df11 with `residentPercent` of the layers resident (100: the head too). */
async function measure(gpu: Gpu, run: Run, mode: WeightMode, residentPercent = 0): Promise<number> {
  const model = await run.model(mode);
  const contextLength = promptTokens + WARMUP_DECODES + decodeSteps + 1;
  const layers = Math.round((residentPercent / 100) * model.spec.numLayers);
  const resident = { layers, head: layers === model.spec.numLayers };
  const t0 = performance.now();
  const gen = await createGenerator(gpu, model, { mode, contextLength, resident });
  const loadSeconds = (performance.now() - t0) / 1000;
  try {
    const prompt = Array.from({ length: promptTokens }, (_, i) => (i * 7919 + 13) % model.spec.vocabSize);
    // One untimed prefill compiles the pipelines; then a timed one from position 0.
    await gen.prefill(prompt.slice(0, Math.min(prompt.length, 4)));
    gen.reset();
    const t1 = performance.now();
    await gen.prefill(prompt);
    const prefillMs = performance.now() - t1;
    const steps: number[] = [];
    for (let i = 0; i < WARMUP_DECODES + decodeSteps; i++) {
      const t = performance.now();
      await gen.decode((i * 31 + 7) % model.spec.vocabSize);
      if (i >= WARMUP_DECODES) steps.push(performance.now() - t);
    }
    const decodeMs = median(steps);
    const mem = gen.memory();
    emit({
      bench: 'forward',
      model: run.name,
      mode,
      ...(mode === 'df11' ? { resident_percent: residentPercent } : {}),
      resident_layers: mem.resident.layers,
      resident_head: mem.resident.head,
      adapter: `${gpu.adapterInfo.vendor} ${gpu.adapterInfo.architecture} ${gpu.adapterInfo.description}`.trim(),
      load_s: sig(loadSeconds),
      prefill_tokens: promptTokens,
      prefill_ms: sig(prefillMs),
      prefill_tok_s: sig((promptTokens * 1000) / prefillMs),
      decode_steps: decodeSteps,
      decode_ms_median: sig(decodeMs),
      decode_tok_s: sig(1000 / decodeMs),
      weight_bytes: mem.weightBytes,
      bf16_weight_bytes: mem.bf16WeightBytes,
      transient_bytes: mem.transientBytes,
      kv_cache_bytes: mem.kvCacheBytes,
      planned_bytes: gen.layout.totalBytes,
      allocated_bytes: mem.weightBytes + mem.transientBytes + mem.kvCacheBytes + mem.activationBytes,
      ...run.extra,
    });
    return 1000 / decodeMs;
  } finally {
    gen.dispose();
  }
}

const gpu = await createNodeGpu({ shaders: benchShaders });
const runs: Run[] = [];
const wanted = new Set((values.models ?? (small ? 'tiny' : 'stories-15m,llama-1b')).split(','));
if (wanted.has('stories-15m')) {
  // The bundled BF16 model, or (in a checkout trimmed to fit the GPU machine) the official DF11 copy of it.
  const dir = ['models/stories-15m', 'test/fixtures/official-df11/stories-15m'].find((d) => existsSync(`${d}/model.safetensors`));
  if (dir) runs.push({ name: 'stories-15m', model: async () => openModel(directoryFiles(dir)), extra: { source: dir } });
  else emit({ bench: 'forward', model: 'stories-15m', skipped: 'no models/stories-15m or test/fixtures/official-df11/stories-15m here' });
}
for (const [name, sizes] of [
  ['tiny', { hidden: 128, layers: 2, heads: 4, kvHeads: 2, intermediate: 256, vocab: 512 }],
  ['llama-1b', { hidden: 2048, layers: 16, heads: 32, kvHeads: 8, intermediate: 8192, vocab: 32000 }],
  ['llama-8b', { hidden: 4096, layers: 32, heads: 32, kvHeads: 8, intermediate: 14336, vocab: 128256 }],
] as const) {
  if (!wanted.has(name)) continue;
  const synthetic = syntheticModel(llamaSpec(sizes), 1234, name === 'llama-8b');
  runs.push({
    name: `synthetic-${name}`,
    model: async (mode) => (mode === 'df11' ? synthetic.df11 : synthetic.bf16),
    extra: { generate_s: sig(synthetic.seconds.generate), compress_s: sig(synthetic.seconds.compress) },
  });
}
for (const run of runs) {
  const bf16 = await measure(gpu, run, 'bf16');
  const byResident: Record<string, number> = {};
  for (const percent of residentPercents) byResident[percent] = sig((await measure(gpu, run, 'df11', percent)) / bf16);
  emit({ bench: 'forward', model: run.name, df11_over_bf16_decode: byResident[residentPercents[0]!], df11_over_bf16_decode_by_resident_percent: byResident });
}
gpu.destroy();
