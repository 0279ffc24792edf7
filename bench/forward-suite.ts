/**
 * The forward benchmark's measuring core, shared by bench/forward-bench.ts (Node) and the bench page
 * (bench.html). Prefill and decode tokens/s of the GPU forward in BF16 and DF11 weight modes, in the same
 * run, for stories-15m (the caller's copy: see runForwardBench), a synthetic Llama of 1B shape (hidden 2048,
 * 16 layers, 32 heads / 8 KV heads, intermediate 8192, vocab 32000, untied head) and one of
 * Llama-3.1-8B shape (hidden 4096, 32 layers, 32 / 8 heads, intermediate 14336, vocab 128256; BF16 mode
 * only by default), N(0, 0.02) BF16 weights generated here from a seed. First the device's shader-copy bandwidth (bench/gpu-timing.ts);
 * then one JSON line per (model, mode, prefill chunk) with prefill and decode tok/s, dispatches per decoded
 * token, and the effective weight bandwidth of decode (the BF16 bytes of every layer matrix and the LM
 * head, per token) beside the copy bandwidth; then one line per model with the DF11/BF16 decode ratio.
 *
 * The synthetic model's layers share one set of random matrices (and so one compressed DF11 unit):
 * bandwidth and decode work per layer are what a real model's are, and generation + compression stay
 * at a few seconds instead of a minute (the 8B shape repeats a 2^22-weight random block and is only
 * compressed when df11 mode is asked for). Timing is wall clock around whole generator calls (each decode
 * step includes reading the logits back), medians over the measured steps.
 * Options: --prompt N (prefill tokens, default 512), --decode N (decode steps, default 32), --chunk 64,512
 * (prefill chunk sizes, one generator each), --models stories-15m,llama-1b,llama-8b,tiny,tiny-1b (which to
 * run; --small runs tiny; tiny-1b: the 1B shape's layers and heads at tiny sizes, for record_ms_median), --modes bf16,df11 (default: both, bf16 only for llama-8b), --copy-mib M,
 * --resident 0,25,50,100 (DF11 runs with that percent of the layers kept resident in BF16, decoded once at
 * load; 100 = every layer and the LM head, the planner's last step, where the matmuls are BF16 mode's on
 * resident BF16; default 0): one line per percent (resident_layers, resident_head, planned_bytes of the
 * memory layout beside allocated_bytes), and the model's ratio line gives each one's decode tok/s over BF16's
 * (df11_over_bf16_decode is the first percent's). --fused: every DF11 run (percent < 100) once more with
 * one-token steps through the fused decode + GEMV (ForwardOptions.fusedDecode; lines carry fused_decode),
 * and the ratio line adds df11_fused_over_bf16_decode_by_resident_percent. --layers-per-submit 1,4 and
 * --gemv t128-l128-r8-sg,... (GEMV variant names, matmul-bench's): every run once per combination (lines
 * carry layers_per_submit and gemv; ratios from the first). Each line has record_ms_median: a decode step's
 * CPU time up to its last submit (probe: stepProbe). --dawn-features skip_validation (Node only; lines carry
 * dawn_features): Dawn's instance toggles, to see how much of the recording is Dawn's validation.
 *
 * Long context (--suites, default "forward" = the run above; the others use the synthetic models only):
 *   kernels    one decode step's kernels timed alone (50 back to back a submit) at each shape (bench/step-kernels.ts),
 *              at the forward suite's context, summed to a step
 *   context    decode tok/s with the cache at each of --contexts (default 128,4096,16384,32768): one token
 *              at position C-1 over a cache of C positions (what a decode step at that context costs; the
 *              cache content does not change the work), per weight mode (--modes, default bf16,df11) and KV
 *              dtype (--kv f32,f16); --prefill-contexts (default 4096,16384): prefill tok/s of that many
 *              tokens from position 0 in chunks of 64, like the generator.
 *   forward    uses the first of --kv (default f32, as before the f16 cache existed).
 *   attention  the attention kernel alone, one decode token (the decode path, attention_decode.wgsl, where
 *              the shape allows it; `path` says which ran) over a filled cache of each of --attention-context
 *              positions (default 16384), per KV dtype and model shape: µs per call and GB/s of K+V read;
 *              --decode-targets sweeps the decode path's workgroup target (default: the kernel's).
 *   npx tsx bench/forward-bench.ts --small --suites forward,context,attention   # SwiftShader smoke test
 * Options are flags in Node (--small) and query parameters on the bench page (?small&models=tiny).
 */
import { Df11Error } from '../src/errors.ts';
import { LAYER_LINEARS, linearShapes, specFromConfig, type LayerLinear } from '../src/format/config.ts';
import { encodeUnit } from '../src/format/df11-encoder.ts';
import type { Df11Unit } from '../src/format/df11-types.ts';
import type { ModelSpec } from '../src/format/model-spec.ts';
import type { ModelWeights, WeightLocation } from '../src/format/model-reader.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { AttentionKernel, attentionPlan, attentionScratchBytes, DECODE_TARGET_WORKGROUPS, decodePlan } from '../src/gpu/kernels/attention.ts';
import { KV_DTYPE_BYTES, type KvDtype } from '../src/gpu/kernels/kv-dtype.ts';
import { defaultMatmulOptions, gemvVariantName, gemvVariants, type GemvVariant } from '../src/gpu/kernels/matmul.ts';
import { DEFAULT_LAYERS_PER_SUBMIT, Forward } from '../src/model/forward.ts';
import { createGenerator } from '../src/model/generator.ts';
import { DEFAULT_CHUNK_TOKENS, type WeightMode } from '../src/model/layout.ts';
import { GpuWeights } from '../src/model/weights.ts';
import { normalBf16, tiledNormalBf16 } from '../src/testing/random-weights.ts';
import { benchCopy } from './gpu-timing.ts';
import { measureStepKernels } from './step-kernels.ts';
import { stringOption, type OptionSpec, type OptionValues } from './options.ts';
import { emit, median, sig } from './report.ts';

export const FORWARD_OPTIONS = {
  small: { type: 'boolean', default: false },
  prompt: { type: 'string' },
  decode: { type: 'string' },
  models: { type: 'string' },
  modes: { type: 'string' },
  chunk: { type: 'string' },
  'copy-mib': { type: 'string' },
  suites: { type: 'string', default: 'forward' },
  contexts: { type: 'string' },
  'prefill-contexts': { type: 'string' },
  kv: { type: 'string', default: 'f32,f16' },
  'attention-context': { type: 'string' },
  'decode-targets': { type: 'string' },
  resident: { type: 'string', default: '0' },
  fused: { type: 'boolean', default: false },
  'layers-per-submit': { type: 'string' },
  gemv: { type: 'string' },
  /** Node only (bench/forward-bench.ts): Dawn features to enable, e.g. skip_validation (an A/B of Dawn's own per-call cost). */
  'dawn-features': { type: 'string' },
} as const satisfies OptionSpec;

const list = (s: string): string[] => s.split(',').filter((x) => x !== '');

/** What one run measures (from FORWARD_OPTIONS), plus the device's copy bandwidth and the dispatch probe. */
interface Bench {
  small: boolean;
  suites: Set<string>;
  contexts: number[];
  prefillContexts: number[];
  kvDtypes: KvDtype[];
  residentPercents: number[];
  /** DF11 runs also with the fused decode + GEMV. */
  fused: boolean;
  /**
   * Forward variants, each run once (ratios from the first): every --layers-per-submit value (ForwardOptions)
   * × every --gemv variant name (gemvVariantName; default: the adapter's default GEMV).
   */
  variants: ForwardVariant[];
  attentionContexts: number[];
  decodeTargets: number[];
  promptTokens: number;
  chunks: number[];
  decodeSteps: number;
  warmupDecodes: number;
  copyGbps: number;
  probe: StepProbe;
}

function benchConfig(values: OptionValues): Omit<Bench, 'copyGbps' | 'probe'> {
  const small = values.small === true;
  const opt = (name: keyof typeof FORWARD_OPTIONS, smallDefault: string, defaultValue: string): string =>
    stringOption(values, name) ?? (small ? smallDefault : defaultValue);
  const withDefault = (name: 'suites' | 'kv' | 'resident'): string => stringOption(values, name, FORWARD_OPTIONS[name].default)!;
  const residentPercents = list(withDefault('resident')).map((p) => {
    const x = Number(p);
    if (!Number.isFinite(x) || x < 0 || x > 100) throw new Df11Error('bad-request', `--resident takes percents 0..100, got '${p}'`);
    return x;
  });
  return {
    small,
    suites: new Set(list(withDefault('suites'))),
    contexts: list(opt('contexts', '16,100', '128,4096,16384,32768')).map(Number),
    prefillContexts: list(opt('prefill-contexts', '100', '4096,16384')).map(Number),
    kvDtypes: list(withDefault('kv')) as KvDtype[],
    residentPercents,
    fused: values.fused === true,
    variants: list(stringOption(values, 'layers-per-submit') ?? String(DEFAULT_LAYERS_PER_SUBMIT)).flatMap((lps) =>
      list(stringOption(values, 'gemv') ?? 'default').map((gemv) => ({ layersPerSubmit: Number(lps), gemv: gemv === 'default' ? undefined : gemv })),
    ),
    attentionContexts: list(opt('attention-context', '300', '16384')).map(Number),
    decodeTargets: list(opt('decode-targets', String(DECODE_TARGET_WORKGROUPS), String(DECODE_TARGET_WORKGROUPS))).map(Number),
    promptTokens: Number(opt('prompt', '8', '512')),
    chunks: list(opt('chunk', '3,8', '64,512')).map(Number),
    decodeSteps: Number(opt('decode', '4', '32')),
    warmupDecodes: small ? 1 : 4,
  };
}

/** A Llama spec with the given sizes (RoPE default, theta 10000; head_dim hidden / heads unless given). */
function llamaSpec(s: { hidden: number; layers: number; heads: number; kvHeads: number; headDim?: number; intermediate: number; vocab: number }): ModelSpec {
  return specFromConfig({
    model_type: 'llama',
    vocab_size: s.vocab,
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    ...(s.headDim === undefined ? {} : { head_dim: s.headDim }),
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    max_position_embeddings: 4096,
    tie_word_embeddings: false,
  });
}

/**
 * The synthetic model behind the ModelWeights interface, in both encodings: 'bf16' serves plain tensors,
 * 'df11' serves DF11 units (one compressed layer unit reused, renamed, for every layer).
 */
function syntheticModel(spec: ModelSpec, seed: number, tiled: boolean): { bf16: ModelWeights; df11: () => ModelWeights; seconds: { generate: number; compress: number } } {
  const t0 = performance.now();
  const shapes = linearShapes(spec);
  const random = tiled ? tiledBf16 : normalBf16;
  const layer = new Map<LayerLinear, Uint16Array>();
  LAYER_LINEARS.forEach((l, i) => layer.set(l, random(shapes[l][0] * shapes[l][1], seed + i)));
  const embed = random(spec.vocabSize * spec.hiddenSize, seed + 100);
  const head = random(spec.vocabSize * spec.hiddenSize, seed + 101);
  const ones = new Uint16Array(spec.hiddenSize).fill(0x3f80); // 1.0 in BF16
  const seconds = { generate: (performance.now() - t0) / 1000, compress: 0 };

  let units: { layer: Df11Unit; embed: Df11Unit; head: Df11Unit } | undefined;
  const compressed = (): { layer: Df11Unit; embed: Df11Unit; head: Df11Unit } => {
    if (!units) {
      const t1 = performance.now();
      units = {
        layer: encodeUnit('model.layers.0', LAYER_LINEARS.map((l) => ({ name: `model.layers.0.${l}.weight`, shape: shapes[l], bits: layer.get(l)! }))),
        embed: encodeUnit('model.embed_tokens', [{ name: 'model.embed_tokens.weight', shape: shapes.embed_tokens, bits: embed }]),
        head: encodeUnit('lm_head', [{ name: 'lm_head.weight', shape: shapes.lm_head, bits: head }]),
      };
      seconds.compress = (performance.now() - t1) / 1000;
    }
    return units;
  };

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
    const { layer: layerUnit, embed: embedUnit, head: headUnit } = compressed();
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
        const u = compressed();
        const offsets = unit === 'model.embed_tokens' ? u.embed : unit === 'lm_head' ? u.head : u.layer;
        const m = offsets.matrices.find((x) => x.name.replace(/^model\.layers\.0\./, `${unit}.`) === name)!;
        return { kind: 'df11', unit, matrix: { ...m, name } };
      }
      if (isNorm(name)) return { kind: 'tensor', name, dtype: 'BF16', shape: [spec.hiddenSize] };
      const bits = matrixBits(name);
      return bits ? { kind: 'tensor', name, dtype: 'BF16', shape: [bits.length / spec.hiddenSize, spec.hiddenSize] } : undefined;
    },
  });
  return { bf16: view('bf16'), df11: () => view('df11'), seconds };
}

/** n BF16 weights: a 2^22-element N(0, 0.02) block repeated (fast for the 8B shape; same distribution). */
const tiledBf16 = (n: number, seed: number): Uint16Array => tiledNormalBf16(n, seed, 2 ** 22);

/** BF16 bytes a decode step reads from the weights: every layer matrix and the LM head (embedding: one row). */
function decodeWeightBytes(spec: ModelSpec): number {
  const shapes = linearShapes(spec);
  const layer = LAYER_LINEARS.reduce((a, l) => a + shapes[l][0] * shapes[l][1], 0);
  return 2 * (spec.numLayers * layer + spec.vocabSize * spec.hiddenSize);
}

/** What a decode step did on the CPU: its dispatches and when its last command buffer was submitted. */
interface StepProbe {
  reset(): void;
  dispatches(): number;
  /** performance.now() of the last Gpu.submit since reset (the step's recording ends there). */
  lastSubmitAt(): number;
  restore(): void;
}

/**
 * Counts compute dispatches (wrapping GPUComputePassEncoder.prototype.dispatchWorkgroups) and notes the time
 * of each `gpu.submit` (wrapping the instance's method): a benchmark probe only, the library never patches
 * WebGPU. A step's recording time is its last submit minus its start: the CPU work a step cannot overlap.
 */
function stepProbe(gpu: Gpu): StepProbe {
  const proto = (globalThis as unknown as { GPUComputePassEncoder: { prototype: GPUComputePassEncoder } }).GPUComputePassEncoder.prototype;
  const original = proto.dispatchWorkgroups;
  const submit = gpu.submit;
  let n = 0;
  let at = 0;
  proto.dispatchWorkgroups = function (this: GPUComputePassEncoder, x: number, y?: number, z?: number) {
    n++;
    return original.call(this, x, y, z);
  };
  gpu.submit = (commands) => {
    submit.call(gpu, commands);
    at = performance.now();
  };
  return {
    reset: () => { n = 0; at = 0; },
    dispatches: () => n,
    lastSubmitAt: () => at,
    restore: () => {
      proto.dispatchWorkgroups = original;
      gpu.submit = submit;
    },
  };
}

interface Run {
  name: string;
  modes: WeightMode[];
  model: (mode: WeightMode) => Promise<ModelWeights>;
  extra?: () => Record<string, unknown>;
  /** Synthetic runs: run in the long-context suites. */
  synthetic?: boolean;
}

/** Decode tok/s of `run` in `mode`; df11 with `residentPercent` of the layers resident in BF16 (100: the head too). */
/** A forward configuration to measure: layers per submit, and a GEMV variant by name (undefined: the default). */
interface ForwardVariant {
  layersPerSubmit: number;
  gemv?: string;
}

function gemvByName(gpu: Gpu, name: string): GemvVariant {
  const v = gemvVariants(gpu).find((x) => gemvVariantName(x) === name);
  if (!v) throw new Df11Error('bad-request', `--gemv ${name}: this device runs ${gemvVariants(gpu).map(gemvVariantName).join(', ')}`);
  return v;
}

async function measure(gpu: Gpu, b: Bench, run: Run, mode: WeightMode, chunkTokens: number, residentPercent = 0, fusedDecode = false, variant = b.variants[0]!): Promise<number> {
  const { layersPerSubmit } = variant;
  const matmul = variant.gemv === undefined ? undefined : { gemv: gemvByName(gpu, variant.gemv) };
  const model = await run.model(mode);
  const contextLength = b.promptTokens + b.warmupDecodes + b.decodeSteps + 1;
  const layers = Math.round((residentPercent / 100) * model.spec.numLayers);
  const resident = { layers, head: layers === model.spec.numLayers };
  const t0 = performance.now();
  const kvCache = b.kvDtypes[0] ?? 'f32';
  const gen = await createGenerator(gpu, model, { mode, contextLength, chunkTokens, kvCache, resident, fusedDecode, layersPerSubmit, matmul });
  const loadSeconds = (performance.now() - t0) / 1000;
  try {
    const prompt = Array.from({ length: b.promptTokens }, (_, i) => (i * 7919 + 13) % model.spec.vocabSize);
    // One untimed prefill of the whole prompt (first use of every pipeline); then a timed one from position 0.
    await gen.prefill(prompt);
    gen.reset();
    const t1 = performance.now();
    await gen.prefill(prompt);
    const prefillMs = performance.now() - t1;
    const steps: number[] = [];
    const recording: number[] = [];
    let dispatches = 0;
    for (let i = 0; i < b.warmupDecodes + b.decodeSteps; i++) {
      b.probe.reset();
      const t = performance.now();
      await gen.decode((i * 31 + 7) % model.spec.vocabSize);
      if (i >= b.warmupDecodes) {
        steps.push(performance.now() - t);
        recording.push(b.probe.lastSubmitAt() - t);
      }
      dispatches = b.probe.dispatches();
    }
    const decodeMs = median(steps);
    const mem = gen.memory();
    // DF11 layers decoded per step (not fused): the same decodes alone, to split a step into decode and the rest.
    const decodeOnlyMs = mode === 'df11' && !fusedDecode && !resident.head ? await decodeOnlyStepMs(gpu, b, model, { contextLength, chunkTokens, kvDtype: kvCache, resident }) : undefined;
    const weightGbps = decodeWeightBytes(model.spec) / (decodeMs * 1e6);
    emit({
      bench: 'forward',
      model: run.name,
      mode,
      ...(mode === 'df11' ? { resident_percent: residentPercent, fused_decode: fusedDecode } : {}),
      resident_layers: mem.resident.layers,
      resident_head: mem.resident.head,
      adapter: `${gpu.adapterInfo.vendor} ${gpu.adapterInfo.architecture} ${gpu.adapterInfo.description}`.trim(),
      load_s: sig(loadSeconds),
      prefill_tokens: b.promptTokens,
      prefill_chunk: chunkTokens,
      prefill_ms: sig(prefillMs),
      prefill_tok_s: sig((b.promptTokens * 1000) / prefillMs),
      decode_steps: b.decodeSteps,
      decode_ms_median: sig(decodeMs),
      decode_tok_s: sig(1000 / decodeMs),
      ...(decodeOnlyMs === undefined
        ? {}
        : { df11_decode_only_ms: sig(decodeOnlyMs), df11_decode_share: sig(decodeOnlyMs / decodeMs), per_layer_ms: { decode: sig(decodeOnlyMs / model.spec.numLayers), rest: sig((decodeMs - decodeOnlyMs) / model.spec.numLayers) } }),
      dispatches_per_token: dispatches,
      layers_per_submit: layersPerSubmit,
      gemv: variant.gemv ?? gemvVariantName(defaultMatmulOptions(gpu).gemv),
      // CPU time from a step's start to its last submit (the GPU runs meanwhile; the step waits on it after)
      record_ms_median: sig(median(recording)),
      decode_ms_min: sig(Math.min(...steps)),
      decode_weight_bytes: decodeWeightBytes(model.spec),
      decode_weight_gbps: sig(weightGbps),
      shader_copy_gbps_rw: b.copyGbps,
      decode_weight_vs_copy_rw: sig(weightGbps / b.copyGbps),
      weight_bytes: mem.weightBytes,
      bf16_weight_bytes: mem.bf16WeightBytes,
      transient_bytes: mem.transientBytes,
      kv_cache: kvCache,
      kv_cache_bytes: mem.kvCacheBytes,
      planned_bytes: gen.layout.totalBytes,
      allocated_bytes: mem.weightBytes + mem.transientBytes + mem.kvCacheBytes + mem.activationBytes,
      ...run.extra?.(),
    });
    return 1000 / decodeMs;
  } finally {
    gen.dispose();
  }
}

/**
 * Milliseconds of one decode step's DF11 work alone: every per-step layer decode and head tile decode, recorded
 * and submitted per layer as the forward does, nothing else (the `rest` of a step is its matmuls, attention,
 * norms and the recording of their dispatches).
 */
async function decodeOnlyStepMs(
  gpu: Gpu,
  b: Bench,
  model: ModelWeights,
  options: { contextLength: number; chunkTokens: number; kvDtype: KvDtype; resident: { layers: number; head: boolean } },
): Promise<number> {
  const weights = await GpuWeights.load(gpu, model, { mode: 'df11', ...options });
  try {
    const step = async (): Promise<number> => {
      const t = performance.now();
      for (let l = 0; l < model.spec.numLayers; l++) {
        const encoder = gpu.device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        weights.prepareLayer(pass, l);
        pass.end();
        gpu.submit([encoder.finish()]);
      }
      const encoder = gpu.device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      weights.headTiles.forEach((_, j) => weights.prepareHeadTile(pass, j));
      pass.end();
      gpu.submit([encoder.finish()]);
      await gpu.device.queue.onSubmittedWorkDone();
      return performance.now() - t;
    };
    const times: number[] = [];
    for (let i = 0; i < b.warmupDecodes + b.decodeSteps; i++) {
      const ms = await step();
      if (i >= b.warmupDecodes) times.push(ms);
    }
    return median(times);
  } finally {
    weights.destroy();
  }
}

/** Decode tok/s at each context and prefill tok/s of long prompts, one weight mode and KV dtype. */
async function measureContext(gpu: Gpu, b: Bench, run: Run, mode: WeightMode, kvCache: KvDtype): Promise<void> {
  const model = await run.model(mode);
  const maxTokens = DEFAULT_CHUNK_TOKENS;
  const contextLength = Math.max(...b.contexts, ...b.prefillContexts);
  const weights = await GpuWeights.load(gpu, model, { mode, contextLength, chunkTokens: maxTokens, kvDtype: kvCache });
  let forward: Forward | undefined;
  try {
    forward = await Forward.create(gpu, weights, { ropePrecision: 'bf16' });
    const common = { bench: 'forward-context', model: run.name, mode, kv_cache: kvCache, kv_cache_bytes: forward.kv.bytes };
    await forward.run(Uint32Array.of(1), 0, true); // compiles the pipelines
    // Warm the GPU up (clocks, caches) before the first measured context, so it is not measured cold: 20 steps
    // were not enough on the H200 (the first context read 3x slow, the same context later normal:
    // bench/runs/2026-12-02c-h200/context-order.txt), so at least a second of steps.
    const warmUntil = performance.now() + (b.small ? 0 : 1000);
    for (let i = 0; i < 5 * b.warmupDecodes || (performance.now() < warmUntil && i < 10_000); i++) await forward.run(Uint32Array.of(1), b.contexts[0]! - 1, true);
    for (const context of b.contexts) {
      const steps: number[] = [];
      for (let i = 0; i < b.warmupDecodes + b.decodeSteps; i++) {
        const t = performance.now();
        await forward.run(Uint32Array.of((i * 31 + 7) % model.spec.vocabSize), context - 1, true);
        if (i >= b.warmupDecodes) steps.push(performance.now() - t);
      }
      const ms = median(steps);
      emit({ ...common, context, decode_steps: b.decodeSteps, decode_ms_median: sig(ms), decode_tok_s: sig(1000 / ms) });
    }
    for (const tokens of b.prefillContexts) {
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
async function measureAttention(gpu: Gpu, b: Bench, name: string, spec: ModelSpec, kvCache: KvDtype, context: number, decodeTarget: number): Promise<void> {
  const shape = { numHeads: spec.numHeads, numKvHeads: spec.numKvHeads, headDim: spec.headDim };
  const kernel = await AttentionKernel.create(gpu, kvCache, decodeTarget);
  const cacheBytes = Math.ceil((spec.numKvHeads * context * spec.headDim * KV_DTYPE_BYTES[kvCache]) / 4) * 4;
  const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  const buffers = await Promise.all([
    gpu.createBuffer({ label: 'bench q', size: spec.numHeads * spec.headDim * 4, usage: storage }),
    gpu.createBuffer({ label: 'bench k', size: cacheBytes, usage: storage }),
    gpu.createBuffer({ label: 'bench v', size: cacheBytes, usage: storage }),
    gpu.createBuffer({ label: 'bench out', size: spec.numHeads * spec.headDim * 4, usage: storage }),
    gpu.createBuffer({ label: 'bench partials', size: attentionScratchBytes(shape, kernel.tiling, context, 1, decodeTarget), usage: storage }),
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
    gpu.submit([encoder.finish()]);
    await gpu.device.queue.onSubmittedWorkDone();
    return performance.now() - t;
  };
  try {
    await batch(10);
    const calls = b.small ? 5 : 200;
    const times: number[] = [];
    for (let r = 0; r < 5; r++) times.push(await batch(calls));
    const ms = median(times) / calls;
    const bytes = 2 * cacheBytes;
    const decodePath = call.usesDecodePath(args);
    emit({
      bench: 'attention',
      shape: name,
      kv_cache: kvCache,
      context,
      heads: spec.numHeads,
      kv_heads: spec.numKvHeads,
      head_dim: spec.headDim,
      path: decodePath ? 'decode' : 'tiled',
      decode_target_workgroups: decodeTarget,
      plan: decodePath ? decodePlan(shape, kvCache, context - 1, 0, decodeTarget) : attentionPlan(shape, kernel.tiling, 1, context - 1, 0),
      us_per_call: sig(ms * 1000),
      kv_read_gb_s: sig(bytes / (ms / 1000) / 1e9),
    });
  } finally {
    call.destroy();
    for (const b of buffers) b.destroy();
  }
}

/** A model read from files: the bundled stories-15m where the runtime has it. */
export interface FileModel {
  /** Where it came from (reported in its lines). */
  source: string;
  open: () => Promise<ModelWeights>;
}

/**
 * Runs the forward benchmark on `gpu` with `values` of FORWARD_OPTIONS; emits its JSON lines. `stories15m`
 * is the bundled model where this runtime has it (undefined: its lines say skipped).
 */
export async function runForwardBench(gpu: Gpu, values: OptionValues, stories15m: FileModel | undefined): Promise<void> {
  const config = benchConfig(values);
  const probe = stepProbe(gpu);
  try {
    // the device's shader-copy bandwidth (JSON lines), which the forward lines are read against
    const copyGbps = await benchCopy(gpu, Number(stringOption(values, 'copy-mib') ?? (config.small ? 16 : 1024)), config.small ? 3 : 20);
    await forwardRuns(gpu, values, { ...config, probe, copyGbps }, stories15m);
  } finally {
    probe.restore();
  }
}

async function forwardRuns(gpu: Gpu, values: OptionValues, b: Bench, stories15m: FileModel | undefined): Promise<void> {
  const { small, suites } = b;
  const modes = stringOption(values, 'modes');
  const modesFor = (fallback: WeightMode[]): WeightMode[] => (modes ? (list(modes) as WeightMode[]) : fallback);
  const runs: Run[] = [];
  const wanted = new Set(list(stringOption(values, 'models') ?? (small ? 'tiny' : 'stories-15m,llama-1b,llama-8b')));
  if (wanted.has('stories-15m')) {
    if (stories15m) runs.push({ name: 'stories-15m', modes: modesFor(['bf16', 'df11']), model: stories15m.open, extra: () => ({ source: stories15m.source }) });
    else emit({ bench: 'forward', model: 'stories-15m', skipped: 'no bundled stories-15m here' });
  }
  for (const [name, sizes, tiled] of [
    ['tiny', { hidden: 128, layers: 2, heads: 4, kvHeads: 2, intermediate: 256, vocab: 512 }, false],
    // the 1B shape's structure (layers, heads: the dispatches, bind groups and params a step records) at tiny
    // sizes: its record_ms_median is the host's recording cost of a 1B step on any machine, SwiftShader included
    ['tiny-1b', { hidden: 64, layers: 16, heads: 32, kvHeads: 8, headDim: 8, intermediate: 128, vocab: 256 }, false],
    ['llama-1b', { hidden: 2048, layers: 16, heads: 32, kvHeads: 8, intermediate: 8192, vocab: 32000 }, false],
    ['llama-8b', { hidden: 4096, layers: 32, heads: 32, kvHeads: 8, intermediate: 14336, vocab: 128256 }, true],
  ] as const) {
    if (!wanted.has(name)) continue;
    const spec = llamaSpec(sizes);
    if (suites.has('attention')) {
      for (const context of b.attentionContexts) {
        for (const kv of b.kvDtypes) {
          for (const target of b.decodeTargets) await measureAttention(gpu, b, name, spec, kv, context, target);
        }
      }
    }
    if (suites.has('kernels')) {
      for (const kv of b.kvDtypes) await measureStepKernels(gpu, name, spec, kv, b.promptTokens + b.warmupDecodes + b.decodeSteps, small ? 2 : 5, small ? 2 : 50);
    }
    if (!suites.has('forward') && !suites.has('context')) continue;
    const synthetic = syntheticModel(spec, 1234, tiled);
    runs.push({
      name: `synthetic-${name}`,
      modes: modesFor(name === 'llama-8b' ? ['bf16'] : ['bf16', 'df11']),
      model: async (mode) => (mode === 'df11' ? synthetic.df11() : synthetic.bf16),
      extra: () => ({ generate_s: sig(synthetic.seconds.generate), compress_s: sig(synthetic.seconds.compress) }),
      synthetic: true,
    });
  }
  for (const run of runs) {
    if (suites.has('forward')) {
      let bf16: number | undefined;
      const df11 = new Map<number, number>(); // by resident percent
      const df11Fused = new Map<number, number>();
      for (const mode of run.modes) {
        for (const chunk of b.chunks) {
          if (mode === 'bf16') {
            bf16 = await measure(gpu, b, run, mode, chunk);
            for (const variant of b.variants.slice(1)) await measure(gpu, b, run, mode, chunk, 0, false, variant);
          } else {
            for (const percent of b.residentPercents) {
              df11.set(percent, await measure(gpu, b, run, mode, chunk, percent));
              for (const variant of b.variants.slice(1)) await measure(gpu, b, run, mode, chunk, percent, false, variant);
              if (b.fused && percent < 100) df11Fused.set(percent, await measure(gpu, b, run, mode, chunk, percent, true));
            }
          }
        }
      }
      if (bf16 !== undefined && df11.size > 0) {
        const over = (m: Map<number, number>) => Object.fromEntries([...m].map(([percent, tokS]) => [percent, sig(tokS / bf16!)]));
        const ratios = over(df11);
        const fused = df11Fused.size > 0 ? { df11_fused_over_bf16_decode_by_resident_percent: over(df11Fused) } : {};
        emit({ bench: 'forward', model: run.name, df11_over_bf16_decode: ratios[b.residentPercents[0]!], df11_over_bf16_decode_by_resident_percent: ratios, ...fused });
      }
    }
    if (suites.has('context') && run.synthetic) {
      for (const mode of run.modes) for (const kv of b.kvDtypes) await measureContext(gpu, b, run, mode, kv);
    }
  }
}
