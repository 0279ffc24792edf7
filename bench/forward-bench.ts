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
 * --models stories-15m,llama-1b,llama-8b,tiny (which to run; --small runs tiny).
 *
 * Long context (--suites, default "forward" = the run above; the others use the synthetic models only):
 *   context    decode tok/s with the cache at each of --contexts (default 128,4096,16384,32768): one token
 *              at position C-1 over a cache of C positions (what a decode step at that context costs; the
 *              cache content does not change the work), per weight mode (--modes bf16,df11) and KV dtype
 *              (--kv f32,f16); --prefill-contexts (default 4096,16384): prefill tok/s of that many tokens
 *              from position 0 in chunks of 64, like the generator.
 *   forward    uses the first of --kv (default f32, as before the f16 cache existed).
 *   attention  the attention kernel alone, one decode token (the decode path, attention_decode.wgsl, where
 *              the shape allows it; `path` says which ran) over a filled cache of --attention-context
 *              positions (default 16384), per KV dtype and model shape: µs per call and GB/s of K+V read.
 *   node dist-bench/forward-bench.mjs --suites context,attention --models llama-1b
 *   npx tsx bench/forward-bench.ts --small --suites forward,context,attention   # SwiftShader smoke test
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
import { AttentionKernel, attentionPlan, attentionScratchBytes, decodePlan } from '../src/gpu/kernels/attention.ts';
import { KV_DTYPE_BYTES, type KvDtype } from '../src/gpu/kernels/kv-dtype.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { Forward } from '../src/model/forward.ts';
import { createGenerator, DEFAULT_CHUNK_TOKENS } from '../src/model/generator.ts';
import { GpuWeights, type WeightMode } from '../src/model/weights.ts';
import { normalBf16 } from '../src/testing/random-weights.ts';
import { emit, median, sig } from './report.ts';
import { benchShaders } from './shaders.ts';

const { values } = parseArgs({
  options: {
    small: { type: 'boolean', default: false },
    prompt: { type: 'string' },
    decode: { type: 'string' },
    models: { type: 'string' },
    suites: { type: 'string', default: 'forward' },
    contexts: { type: 'string' },
    'prefill-contexts': { type: 'string' },
    modes: { type: 'string', default: 'bf16,df11' },
    kv: { type: 'string', default: 'f32,f16' },
    'attention-context': { type: 'string' },
  },
});
const small = values.small;
const list = (s: string): string[] => s.split(',').filter((x) => x !== '');
const suites = new Set(list(values.suites));
const contexts = list(values.contexts ?? (small ? '16,100' : '128,4096,16384,32768')).map(Number);
const prefillContexts = list(values['prefill-contexts'] ?? (small ? '100' : '4096,16384')).map(Number);
const modes = list(values.modes) as WeightMode[];
const kvDtypes = list(values.kv) as KvDtype[];
const attentionContext = Number(values['attention-context'] ?? (small ? 300 : 16384));
const promptTokens = Number(values.prompt ?? (small ? 8 : 128));
const decodeSteps = Number(values.decode ?? (small ? 4 : 32));
const WARMUP_DECODES = small ? 1 : 4;

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
function syntheticModel(spec: ModelSpec, seed: number): { bf16: ModelWeights; df11: ModelWeights; seconds: { generate: number; compress: number } } {
  const t0 = performance.now();
  const shapes = linearShapes(spec);
  const layer = new Map<LayerLinear, Uint16Array>();
  LAYER_LINEARS.forEach((l, i) => layer.set(l, normalBf16(shapes[l][0] * shapes[l][1], seed + i)));
  const embed = normalBf16(spec.vocabSize * spec.hiddenSize, seed + 100);
  const head = normalBf16(spec.vocabSize * spec.hiddenSize, seed + 101);
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
  /** Synthetic runs: run in the long-context suites. */
  synthetic?: boolean;
}

async function measure(gpu: Gpu, run: Run, mode: WeightMode): Promise<number> {
  const model = await run.model(mode);
  const contextLength = promptTokens + WARMUP_DECODES + decodeSteps + 1;
  const t0 = performance.now();
  const kvCache = kvDtypes[0] ?? 'f32';
  const gen = await createGenerator(gpu, model, { mode, contextLength, kvCache });
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
      kv_cache: kvCache,
      kv_cache_bytes: mem.kvCacheBytes,
      ...run.extra,
    });
    return 1000 / decodeMs;
  } finally {
    gen.dispose();
  }
}

/** Decode tok/s at each context and prefill tok/s of long prompts, one weight mode and KV dtype. */
async function measureContext(gpu: Gpu, run: Run, mode: WeightMode, kvCache: KvDtype): Promise<void> {
  const model = await run.model(mode);
  const maxTokens = DEFAULT_CHUNK_TOKENS;
  const contextLength = Math.max(...contexts, ...prefillContexts);
  const weights = await GpuWeights.load(gpu, model, { mode, maxTokens });
  let forward: Forward | undefined;
  try {
    forward = await Forward.create(gpu, weights, { contextLength, maxTokens, ropePrecision: 'bf16', kvCache });
    const common = { bench: 'forward-context', model: run.name, mode, kv_cache: kvCache, kv_cache_bytes: forward.kv.bytes };
    await forward.run(Uint32Array.of(1), 0, true); // compiles the pipelines
    for (const context of contexts) {
      const steps: number[] = [];
      for (let i = 0; i < WARMUP_DECODES + decodeSteps; i++) {
        const t = performance.now();
        await forward.run(Uint32Array.of((i * 31 + 7) % model.spec.vocabSize), context - 1, true);
        if (i >= WARMUP_DECODES) steps.push(performance.now() - t);
      }
      const ms = median(steps);
      emit({ ...common, context, decode_steps: decodeSteps, decode_ms_median: sig(ms), decode_tok_s: sig(1000 / ms) });
    }
    for (const tokens of prefillContexts) {
      const ids = Uint32Array.from({ length: tokens }, (_, i) => (i * 7919 + 13) % model.spec.vocabSize);
      const t = performance.now();
      for (let start = 0; start < tokens; start += maxTokens) {
        const end = Math.min(tokens, start + maxTokens);
        await forward.run(ids.subarray(start, end), start, end === tokens); // the last chunk reads the logits back: waits for all
      }
      const ms = performance.now() - t;
      emit({ ...common, prefill_tokens: tokens, prefill_ms: sig(ms), prefill_tok_s: sig((tokens * 1000) / ms) });
    }
  } finally {
    forward?.destroy();
    weights.destroy();
  }
}

/** The attention kernel alone, one decode token over `context` cached positions: µs per call and GB/s of K+V read. */
async function measureAttention(gpu: Gpu, name: string, spec: ModelSpec, kvCache: KvDtype, context: number): Promise<void> {
  const shape = { numHeads: spec.numHeads, numKvHeads: spec.numKvHeads, headDim: spec.headDim };
  const kernel = await AttentionKernel.create(gpu, kvCache);
  const cacheBytes = Math.ceil((spec.numKvHeads * context * spec.headDim * KV_DTYPE_BYTES[kvCache]) / 4) * 4;
  const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  const buffers = await Promise.all([
    gpu.createBuffer({ label: 'bench q', size: spec.numHeads * spec.headDim * 4, usage: storage }),
    gpu.createBuffer({ label: 'bench k', size: cacheBytes, usage: storage }),
    gpu.createBuffer({ label: 'bench v', size: cacheBytes, usage: storage }),
    gpu.createBuffer({ label: 'bench out', size: spec.numHeads * spec.headDim * 4, usage: storage }),
    gpu.createBuffer({ label: 'bench partials', size: attentionScratchBytes(shape, kernel.tiling, context, 1), usage: storage }),
  ]);
  const [q, k, v, out, scratch] = buffers;
  // Random K/V (in the cache's dtype: f16 words hold two halves, f32 words one float; ±1 either way).
  const fill = new Uint32Array(cacheBytes / 4).map((_, i) => (kvCache === 'f16' ? 0x3c00bc00 ^ ((i * 2654435761) & 0x80008000) : 0x3f800000 ^ ((i * 2654435761) & 0x80000000)));
  gpu.writeBuffer(k!, 0, fill);
  gpu.writeBuffer(v!, 0, fill);
  const call = await kernel.bind(q!, k!, v!, out!, scratch!);
  const args = { tokens: 1, heads: spec.numHeads, kvHeads: spec.numKvHeads, headDim: spec.headDim, pos0: context - 1, maxSeq: context };
  const batch = async (calls: number): Promise<number> => {
    const encoder = gpu.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (let i = 0; i < calls; i++) call.encode(pass, args);
    pass.end();
    const t = performance.now();
    gpu.device.queue.submit([encoder.finish()]);
    await gpu.device.queue.onSubmittedWorkDone();
    return performance.now() - t;
  };
  try {
    await batch(10);
    const calls = small ? 5 : 200;
    const times: number[] = [];
    for (let r = 0; r < 5; r++) times.push(await batch(calls));
    const ms = median(times) / calls;
    const bytes = 2 * cacheBytes;
    emit({
      bench: 'attention',
      shape: name,
      kv_cache: kvCache,
      context,
      heads: spec.numHeads,
      kv_heads: spec.numKvHeads,
      head_dim: spec.headDim,
      path: call.usesDecodePath(args) ? 'decode' : 'tiled',
      plan: call.usesDecodePath(args) ? decodePlan(shape, kvCache, context - 1, 0) : attentionPlan(shape, kernel.tiling, 1, context - 1, 0),
      us_per_call: sig(ms * 1000),
      kv_read_gb_s: sig(bytes / (ms / 1000) / 1e9),
    });
  } finally {
    call.destroy();
    for (const b of buffers) b.destroy();
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
  const spec = llamaSpec(sizes);
  if (suites.has('attention')) for (const kv of kvDtypes) await measureAttention(gpu, name, spec, kv, attentionContext);
  if (!suites.has('forward') && !suites.has('context')) continue;
  const synthetic = syntheticModel(spec, 1234);
  runs.push({
    name: `synthetic-${name}`,
    model: async (mode) => (mode === 'df11' ? synthetic.df11 : synthetic.bf16),
    extra: { generate_s: sig(synthetic.seconds.generate), compress_s: sig(synthetic.seconds.compress) },
    synthetic: true,
  });
}
for (const run of runs) {
  if (suites.has('forward')) {
    const bf16 = await measure(gpu, run, 'bf16');
    const df11 = await measure(gpu, run, 'df11');
    emit({ bench: 'forward', model: run.name, df11_over_bf16_decode: sig(df11 / bf16) });
  }
  if (suites.has('context') && run.synthetic) {
    for (const mode of modes) for (const kv of kvDtypes) await measureContext(gpu, run, mode, kv);
  }
}
gpu.destroy();
