/**
 * The transformer forward on the GPU for the Llama family (llama, mistral, qwen2, qwen3, smollm3, phi3,
 * gemma3, qwen3_5: differences are spec flags and per-layer attributes: the token mixer (attention, or a
 * Gated DeltaNet with fixed-size state), RoPE table or none, attention window), in the spirit of llama2.c's run.c: every buffer is allocated once up front for the planned
 * context and chunk size, every kernel is bound once, and `encode` reads top to bottom.
 *
 * Weights come from GpuWeights, whose prepare* calls (a no-op or a DF11 decode into the transient buffer)
 * sit where a layer or head tile is about to be used; the forward never asks which encoding is behind them.
 */
import { Df11Error } from '../errors.ts';
import { linearAttentionDims } from '../format/config.ts';
import type { ModelSpec } from '../format/model-spec.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { AttentionKernel, type AttentionCall } from '../gpu/kernels/attention.ts';
import type { GpuDf11Unit } from '../gpu/df11-decode.ts';
import { Conv1dKernel, type Conv1dCall } from '../gpu/kernels/conv1d.ts';
import { DeltaRuleKernel, type DeltaRuleCall } from '../gpu/kernels/delta-rule.ts';
import { Df11GemvKernel, gemvGeometry, gemvPartialsBytes, stacksInUnit, type Df11GemvArgs } from '../gpu/kernels/df11-gemv.ts';
import { EmbedKernel, type EmbedCall } from '../gpu/kernels/embed.ts';
import type { StorageBinding } from '../gpu/kernels/kernel.ts';
import { MatmulKernel, type Activation, type FoldedNorm, type MatmulCall, type MatmulOptions } from '../gpu/kernels/matmul.ts';
import { OutputGateKernel, type OutputGateCall } from '../gpu/kernels/output-gate.ts';
import { RmsNormKernel, type RmsNormCall } from '../gpu/kernels/rmsnorm.ts';
import { RopeKernel, type RopeCall } from '../gpu/kernels/rope.ts';
import { KvCache } from './kv-cache.ts';
import { mixerInputRows } from './layout.ts';
import { roundToBf16, ropeTable, type RopeFrequencyPrecision } from './rope-table.ts';
import type { GpuWeights, HeadTile, ProjectionPart } from './weights.ts';

/** The context length and chunk size come from the weights' memory layout (`weights.layout`). */
export interface ForwardOptions {
  /**
   * See RopeFrequencyPrecision: 'bf16' for BF16 checkpoints, to match HF transformers. Also the precision
   * of the embedding scale (Gemma's sqrt(hidden), a module buffer in the model's dtype in HF).
   */
  ropePrecision: RopeFrequencyPrecision;
  /** GEMV/GEMM choices (default: what suits the adapter); tests force the GPU ones on SwiftShader. */
  matmul?: MatmulOptions;
  /**
   * Layers recorded into one command buffer before it is submitted (default DEFAULT_LAYERS_PER_SUBMIT).
   * 1 lets the GPU start soonest; more saves the CPU a submit and a pass per layer, which on the H200 is
   * most of what bounds a small model's decode step (bench/forward-bench.ts --layers-per-submit).
   */
  layersPerSubmit?: number;
  /**
   * One-token steps run the layer matrices df11 mode decodes per step through the fused decode + GEMV
   * (src/gpu/kernels/df11-gemv.ts) instead of decoding them into the transient buffer first (prefill
   * chunks still decode them), and so does every LM head tile decoded per step (the head always sees one
   * token). Logits then differ from bf16 mode's within f32 summation order (not bit for bit).
   * Default off until measured faster on GPUs (bench/decode-bench.ts, forward-bench --fused).
   */
  fusedDecode?: boolean;
}

/**
 * See ForwardOptions.layersPerSubmit. 1B shape on the H200 (bench/runs/2026-12-02c-h200/layers-per-submit-1b.jsonl):
 * 1 / 2 / 4 / 8 / 16 layers per submit gave 483 / 526 / 538 / 511 / 389 tok/s.
 */
export const DEFAULT_LAYERS_PER_SUBMIT = 4;

/** Activations, f32, for up to `maxTokens` tokens (T) at a time (sizes: act.<name> in the memory layout). */
interface Activations {
  x: GPUBuffer; // (T, hidden) residual stream
  xb: GPUBuffer; // (T, hidden) RMSNorm output feeding attention or the MLP
  qkv: GPUBuffer; // (T, mixer input rows) query [| gate per head] | key | value, or a Gated DeltaNet's qkv | z | b | a
  qr: GPUBuffer; // (T, n_heads, head_dim) queries after [q_norm and] RoPE
  att: GPUBuffer; // (T, n_heads * head_dim) attention output, or (T, value dim) a Gated DeltaNet's
  /** Gated DeltaNet layers only: q | k | v after the causal conv1d and SiLU. */
  conv?: GPUBuffer; // (T, conv channels)
  /** Sandwich norms only: the o or down projection before its post-norm is added to x. */
  ob?: GPUBuffer; // (T, hidden)
  gateUp: GPUBuffer; // (T, 2 * intermediate) gate | up projections
  xf: GPUBuffer; // (1, hidden) final-normed last position
  logits: GPUBuffer; // (vocab) last position's logits
  ropeCosSin: GPUBuffer; // per RoPE table r, at layout.rope[r]: (context, rotary_dim_r / 2, 2)
  attnPartials: GPUBuffer; // (n_kv_heads, group * T, splits, 2 + head_dim) split partials, shared by the layers
}

/** The matmuls of one projection (one when its matrices are fused), each with its first output row. */
type ProjectionCall = Array<{ call: MatmulCall; rowOffset: number }>;

/** A one-token projection with every argument bound (a fused DF11 decode + GEMV, or a bound matmul). */
type StepCall = { encode(pass: GPUComputePassEncoder): void };

/** fusedDecode: a layer's projections for one-token steps, for layers with matrices decoded per step. */
interface FusedLayerCalls {
  qkv: StepCall[];
  o: StepCall[];
  gateUp: StepCall[];
  down: StepCall[];
}

/** Softmax attention over the KV cache. */
interface AttentionMixer {
  kind: 'attention';
  heads: RopeCall; // qkv → qr, k cache, v cache
  attention: AttentionCall; // qr, caches → att
  outputGate?: OutputGateCall; // att *= sigmoid(gate in qkv)
}

/** A Gated DeltaNet over its fixed-size state (conv: the last kernel − 1 inputs; delta: (value_heads, key_dim, value_dim)). */
interface LinearMixer {
  kind: 'linear';
  conv: Conv1dCall; // qkv (its q | k | v rows), conv state → conv
  delta: DeltaRuleCall; // conv, qkv (its z, b, a rows), recurrent state → att
}

interface LayerCalls {
  attnNorm: RmsNormCall; // x → xb
  qkv: ProjectionCall; // xb → qkv (+ bias): the mixer's input projection
  mixer: AttentionMixer | LinearMixer; // qkv → att
  o: ProjectionCall; // x += att · Woᵀ  (sandwich norms: ob = att · Woᵀ)
  postAttnNorm?: RmsNormCall; // x += rmsnorm(ob)
  mlpNorm: RmsNormCall; // x → xb
  gateUp: ProjectionCall; // xb → gateUp
  down: ProjectionCall; // x += (act(gate) * up) · Wdᵀ, the activation applied as the matmul reads gateUp (sandwich norms: ob = …)
  postMlpNorm?: RmsNormCall; // x += rmsnorm(ob)
  /** fusedDecode and a layer decoded per step: used instead of prepareLayer + the projections above for one token. */
  fused?: FusedLayerCalls;
}

export class Forward {
  private constructor(
    private readonly gpu: Gpu,
    readonly spec: ModelSpec,
    private readonly weights: GpuWeights,
    readonly kv: KvCache,
    readonly maxTokens: number,
    private readonly act: Activations,
    private readonly readback: GPUBuffer, // (vocab) f32, MAP_READ
    private readonly calls: { embed: EmbedCall; layers: LayerCalls[]; finalNorm: RmsNormCall; head: MatmulCall[]; fusedHead?: StepCall[] },
    /** Everything above that holds GPU memory (the weights belong to the caller). */
    private readonly owned: ReadonlyArray<{ destroy(): void }>,
    /** The embedding scale in the precision HF applies it. */
    private readonly embedScale: number,
    /** Gated DeltaNet layers' conv and recurrent state buffers (layout state.conv.<i>, state.delta.<i>). */
    private readonly recurrent: readonly GPUBuffer[],
    private readonly layersPerSubmit: number,
  ) {
    this.mixerRows = spec.layers.map((_, l) => mixerInputRows(spec, l));
  }

  /** Per layer: output rows of its mixer input projection (the qkv stride). */
  private readonly mixerRows: readonly number[];

  /** Tokens the recurrent state holds (Gated DeltaNet layers): a step continues from there or starts at 0. */
  private recurrentPosition = 0;

  static async create(gpu: Gpu, weights: GpuWeights, options: ForwardOptions): Promise<Forward> {
    const { spec, layout } = weights;
    const T = layout.maxTokens;
    const ctx = layout.options.contextLength;
    const layersPerSubmit = options.layersPerSubmit ?? DEFAULT_LAYERS_PER_SUBMIT;
    if (!Number.isInteger(layersPerSubmit) || layersPerSubmit < 1) throw new Df11Error('bad-request', `layersPerSubmit must be a positive integer, got ${layersPerSubmit}`);
    const owned: Array<{ destroy(): void }> = [];
    /** The f32 buffer of layout entry act.<name>. */
    const f32 = async (name: keyof Activations | 'readback', usage: number): Promise<GPUBuffer> => {
      const b = await gpu.createBuffer({ label: name, size: layout.buffer(`act.${name}`).bytes, usage });
      owned.push(b);
      return b;
    };
    const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    try {
      const kv = await KvCache.create(gpu, layout);
      owned.push(kv);
      const attention = await AttentionKernel.create(gpu, layout.kvDtype, undefined, [spec.numHeads / spec.numKvHeads]);
      const hasLinear = spec.layers.some((l) => l.mixer === 'linear');
      const act: Activations = {
        x: await f32('x', storage),
        xb: await f32('xb', storage),
        qkv: await f32('qkv', storage),
        qr: await f32('qr', storage),
        att: await f32('att', storage),
        conv: hasLinear ? await f32('conv', storage) : undefined,
        ob: spec.sandwichNorms ? await f32('ob', storage) : undefined,
        gateUp: await f32('gateUp', storage),
        xf: await f32('xf', storage),
        logits: await f32('logits', storage),
        ropeCosSin: await f32('ropeCosSin', storage),
        attnPartials: await f32('attnPartials', storage),
      };
      // RoPE tables back to back, each its own binding at the layout's offset.
      spec.ropes.forEach((r, i) => gpu.writeBuffer(act.ropeCosSin, layout.rope[i]!.offset, ropeTable(r, ctx, options.ropePrecision)));
      const ropeOf = (l: number): StorageBinding => ({ buffer: act.ropeCosSin, ...layout.rope[spec.layers[l]!.rope ?? 0]! });
      const readback = await f32('readback', GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);

      const [embed, rmsnorm, matmul, rope] = await Promise.all([
        EmbedKernel.create(gpu),
        RmsNormKernel.create(gpu),
        MatmulKernel.create(gpu, options.matmul),
        RopeKernel.create(gpu, layout.kvDtype),
      ]);
      const [conv1d, deltaRule, outputGate] = await Promise.all([
        hasLinear ? Conv1dKernel.create(gpu) : undefined,
        hasLinear ? DeltaRuleKernel.create(gpu) : undefined,
        spec.attentionOutputGate ? OutputGateKernel.create(gpu) : undefined,
      ]);
      /** A Gated DeltaNet layer's state buffer (zeroed by its first step). */
      const recurrent: GPUBuffer[] = [];
      const stateBuffer = async (key: string): Promise<GPUBuffer> => {
        const b = await gpu.createBuffer({ label: key, size: layout.buffer(key).bytes, usage: GPUBufferUsage.STORAGE });
        owned.push(b);
        recurrent.push(b);
        return b;
      };
      const bound = async <C extends { destroy(): void }>(call: Promise<C>): Promise<C> => {
        const c = await call;
        owned.push(c);
        return c;
      };
      const projection = async (x: GPUBuffer, parts: ProjectionPart[], out: GPUBuffer, activation: Activation = 'none', norm?: FoldedNorm): Promise<ProjectionCall> =>
        Promise.all(parts.map(async (part) => ({ call: await bound(matmul.bind(x, part.view, part.bias, out, activation, norm)), rowOffset: part.rowOffset })));
      /** The RMSNorm x → xb in front of a projection of xb, for its GEMVs to fold in (see normThenProject). */
      const folded = (weight: GPUBuffer): FoldedNorm | undefined => (spec.hiddenSize % 4 === 0 ? { x: act.x, weight } : undefined);
      const fusedStep = options.fusedDecode ? await fusedStepCalls(gpu, weights, owned) : undefined;
      const layers: LayerCalls[] = [];
      for (let i = 0; i < spec.numLayers; i++) {
        const w = weights.layers[i]!;
        const p = w.projections;
        // Sandwich norms: the o and down projections go to ob, whose norm is then added to x.
        const residual = act.ob ?? act.x;
        const postNorm = async (weight: GPUBuffer | undefined): Promise<RmsNormCall | undefined> =>
          weight && act.ob ? bound(rmsnorm.bind(act.ob, weight, act.x)) : undefined;
        const la = w.linear;
        const mixer: AttentionMixer | LinearMixer = la
          ? {
              kind: 'linear',
              conv: await bound(conv1d!.bind(act.qkv, la.conv, await stateBuffer(`state.conv.${i}`), act.conv!)),
              delta: await bound(deltaRule!.bind(act.conv!, act.qkv, la.aLog, la.dtBias, la.norm, await stateBuffer(`state.delta.${i}`), act.att)),
            }
          : {
              kind: 'attention',
              heads: await bound(
                rope.bind({ src: act.qkv, cosSin: ropeOf(i), qNorm: w.qNorm ?? w.inputNorm, kNorm: w.kNorm ?? w.inputNorm, q: act.qr, kCache: kv.k[i]!, vCache: kv.v[i]! }),
              ),
              attention: await bound(attention.bind(act.qr, kv.k[i]!, kv.v[i]!, act.att, act.attnPartials)),
              outputGate: outputGate ? await bound(outputGate.bind(act.qkv, act.att)) : undefined,
            };
        const calls: LayerCalls = {
          attnNorm: await bound(rmsnorm.bind(act.x, w.inputNorm, act.xb)),
          qkv: await projection(act.xb, p.qkv, act.qkv, 'none', folded(w.inputNorm)),
          mixer,
          o: await projection(act.att, p.o, residual),
          postAttnNorm: await postNorm(w.postAttentionNorm),
          mlpNorm: await bound(rmsnorm.bind(act.x, w.postNorm, act.xb)),
          gateUp: await projection(act.xb, p.gateUp, act.gateUp, 'none', folded(w.postNorm)),
          down: await projection(act.gateUp, p.down, residual, spec.activation),
          postMlpNorm: await postNorm(w.postMlpNorm),
        };
        if (fusedStep && Object.values(p).some((parts) => parts.some((part) => part.df11))) {
          const accumulate = !spec.sandwichNorms;
          calls.fused = {
            qkv: await fusedStep.projection(act.xb, p.qkv, calls.qkv, act.qkv, mixerInputRows(spec, i), false),
            o: await fusedStep.projection(act.att, p.o, calls.o, residual, spec.hiddenSize, accumulate),
            gateUp: await fusedStep.projection(act.xb, p.gateUp, calls.gateUp, act.gateUp, 2 * spec.intermediateSize, false),
            down: await fusedStep.projection(act.gateUp, p.down, calls.down, residual, spec.hiddenSize, accumulate, spec.activation),
          };
        }
        layers.push(calls);
      }
      const calls = {
        embed: await bound(embed.bind(weights.embeddingRows, act.x)),
        layers,
        finalNorm: await bound(rmsnorm.bind(act.x, weights.finalNorm, act.xf)),
        head: await Promise.all(weights.headTiles.map((t) => bound(matmul.bind(act.xf, t.view, undefined, act.logits)))),
        fusedHead: fusedStep && weights.headTiles.every((t) => t.df11) ? await fusedStep.head(act.xf, weights.headTiles, act.logits) : undefined,
      };
      const embedScale = options.ropePrecision === 'bf16' ? roundToBf16(spec.embedScale) : spec.embedScale;
      return new Forward(gpu, spec, weights, kv, T, act, readback, calls, owned, embedScale, recurrent, layersPerSubmit);
    } catch (e) {
      for (const o of owned) o.destroy();
      throw e;
    }
  }

  /** Bytes of activations (incl. the RoPE table, the logits readback and the Gated DeltaNet state). */
  get activationBytes(): number {
    return Object.values(this.act).reduce((a, b) => a + (b?.size ?? 0), 0) + this.readback.size + this.recurrent.reduce((a, b) => a + b.size, 0);
  }

  /**
   * Run `ids` at positions pos..pos+n-1 (their K/V land in the cache) and, if asked, return the last
   * position's logits.  (vocab)
   */
  async run(ids: Uint32Array, pos: number, wantLogits: boolean): Promise<Float32Array | undefined> {
    const n = ids.length;
    if (n < 1 || n > this.maxTokens) throw new Df11Error('bad-request', `a forward step takes 1..${this.maxTokens} tokens, got ${n}`);
    if (pos + n > this.kv.maxSeq) throw new Df11Error('context-overflow', `positions ${pos}..${pos + n - 1} exceed the context of ${this.kv.maxSeq}`);
    if (this.recurrent.length > 0 && pos !== 0 && pos !== this.recurrentPosition) {
      // A recurrent state cannot go back: only continue where it is, or start over at 0.
      throw new Df11Error('bad-request', `this model's recurrent state holds ${this.recurrentPosition} tokens; a step can start there or at 0, not at ${pos}`);
    }
    this.gpu.assertAlive();
    // Each group of layers is submitted as soon as it is recorded, so the GPU runs it while the CPU records
    // the next (one submit per step measured 0.6-0.7x the decode speed on the H200: recording is on the
    // critical path; each submit also costs CPU time, see layersPerSubmit).
    for (const commands of this.encode(ids, pos, wantLogits)) this.gpu.submit([commands]);
    this.recurrentPosition = pos + n;
    if (!wantLogits) return undefined;
    await this.readback.mapAsync(GPUMapMode.READ);
    const logits = new Float32Array(this.readback.getMappedRange().slice(0, this.spec.vocabSize * 4));
    this.readback.unmap();
    return logits;
  }

  /**
   * Record the forward, yielding a command buffer (one compute pass) after every `layersPerSubmit` layers
   * (the first with the embedding) and one for the LM head: the caller submits each at once, so the GPU
   * runs a group while the CPU records the next.
   */
  private *encode(ids: Uint32Array, pos: number, wantLogits: boolean): Generator<GPUCommandBuffer> {
    const { spec, weights, calls, act } = this;
    const n = ids.length;
    const { hiddenSize: h, numHeads: nH, numKvHeads: nKv, headDim: hd, rmsNormEps: eps } = spec;
    const qkNormEps = spec.qkNorm ? eps : undefined;
    const sandwich = spec.sandwichNorms;
    // With an output gate, q_proj gives each head's query then its gate.
    const qHeadStride = spec.attentionOutputGate ? 2 * hd : hd;
    const la = spec.linearAttention;
    const { convDim, valueDim } = linearAttentionDims(spec);
    const device = this.gpu.device;
    const perSubmit = this.layersPerSubmit;
    let encoder = device.createCommandEncoder({ label: 'embed' });

    // x = embedding rows of the tokens
    weights.prepareEmbedding(encoder, ids);
    let pass = encoder.beginComputePass({ label: `embed, layers 0..${Math.min(perSubmit, spec.numLayers) - 1}` });
    calls.embed.encode(pass, { tokens: n, dim: h, rowsOffset: 0, scale: this.embedScale });

    for (let l = 0; l < spec.numLayers; l++) {
      const c = calls.layers[l]!;
      const layer = spec.layers[l]!; // this layer's RoPE table (or none) and attention window
      const rope = layer.rope === null ? undefined : spec.ropes[layer.rope]!;
      const rows = this.mixerRows[l]!;
      if (l > 0 && l % perSubmit === 0) {
        encoder = device.createCommandEncoder({ label: `layers ${l}..` });
        pass = encoder.beginComputePass({ label: `layers ${l}..${Math.min(l + perSubmit, spec.numLayers) - 1}` });
      }
      // one token with fusedDecode: the layer's DF11 matrices are decoded inside its GEMVs
      const fused = n === 1 ? c.fused : undefined;
      if (!fused) weights.prepareLayer(pass, l);
      // token mixer: xb = rmsnorm(x); its input projection xb · Wᵀ (+ bias)
      if (fused) {
        c.attnNorm.encode(pass, { rows: n, dim: h, eps });
        encodeAll(pass, fused.qkv);
      } else {
        normThenProject(pass, c.attnNorm, c.qkv, n, rows, h, eps);
      }
      const m = c.mixer;
      if (m.kind === 'attention') {
        // q [| gate] | k | v: [per-head q/k RMSNorm], [RoPE on the first rotary_dim dims]; k and v go to the cache at positions pos..pos+n-1
        m.heads.encode(pass, {
          tokens: n,
          qHeads: nH,
          kvHeads: nKv,
          headDim: hd,
          pos0: pos,
          maxSeq: this.kv.maxSeq,
          srcTokenStride: rows,
          qHeadStride,
          kOffset: nH * qHeadStride,
          vOffset: nH * qHeadStride + nKv * hd,
          rotate: rope !== undefined,
          rotaryDim: rope?.rotaryDim,
          normEps: qkNormEps,
        });
        // att = softmax(q kᵀ · scale, causal [, last `window` keys]) v over the cache (split over the keys when long) [· sigmoid(gate)]
        m.attention.encode(pass, { tokens: n, heads: nH, kvHeads: nKv, headDim: hd, pos0: pos, maxSeq: this.kv.maxSeq, scale: spec.attentionScale, window: layer.window });
        m.outputGate?.encode(pass, { tokens: n, heads: nH, headDim: hd, gateOffset: hd, gateTokenStride: rows, gateHeadStride: qHeadStride });
      } else {
        // Gated DeltaNet, rows qkv | z | b | a: conv = silu(causal conv1d(q | k | v)) continuing from its state (zeros at
        // position 0); att = gated rmsnorm(gated delta rule over the recurrent state, token by token), gate silu(z)
        const fresh = pos === 0;
        m.conv.encode(pass, { tokens: n, channels: convDim, kernel: la!.convKernel, srcTokenStride: rows, fresh });
        m.delta.encode(pass, {
          tokens: n,
          keyHeads: la!.keyHeads,
          valueHeads: la!.valueHeads,
          keyHeadDim: la!.keyHeadDim,
          valueHeadDim: la!.valueHeadDim,
          projTokenStride: rows,
          zOffset: convDim,
          bOffset: convDim + valueDim,
          aOffset: convDim + valueDim + la!.valueHeads,
          fresh,
          eps,
        });
      }
      // x += [rmsnorm](att · Woᵀ)
      if (fused) encodeAll(pass, fused.o);
      else project(pass, c.o, n, h, !sandwich);
      c.postAttnNorm?.encode(pass, { rows: n, dim: h, eps, accumulate: true });
      // MLP: xb = rmsnorm(x); gate | up = xb · Wᵀ; x += [rmsnorm]((act(gate) * up) · Wdᵀ)
      if (fused) {
        c.mlpNorm.encode(pass, { rows: n, dim: h, eps });
        encodeAll(pass, fused.gateUp);
        encodeAll(pass, fused.down);
      } else {
        normThenProject(pass, c.mlpNorm, c.gateUp, n, 2 * spec.intermediateSize, h, eps);
        project(pass, c.down, n, h, !sandwich);
      }
      c.postMlpNorm?.encode(pass, { rows: n, dim: h, eps, accumulate: true });
      if ((l + 1) % perSubmit === 0 || l === spec.numLayers - 1) {
        pass.end();
        yield encoder.finish();
      }
    }

    if (wantLogits) {
      // logits = rmsnorm(x[last]) · W_headᵀ, one vocabulary tile at a time
      encoder = device.createCommandEncoder({ label: 'lm head' });
      pass = encoder.beginComputePass({ label: 'lm head' });
      calls.finalNorm.encode(pass, { rows: 1, dim: h, eps, inOffset: (n - 1) * h });
      weights.headTiles.forEach((tile, j) => {
        if (calls.fusedHead) {
          calls.fusedHead[j]!.encode(pass);
          return;
        }
        weights.prepareHeadTile(pass, j);
        calls.head[j]!.encode(pass, { tokens: 1, outOffset: tile.rowStart, outStride: spec.vocabSize });
      });
      pass.end();
      encoder.copyBufferToBuffer(act.logits, 0, this.readback, 0, spec.vocabSize * 4);
      yield encoder.finish();
    }
  }

  destroy(): void {
    for (const o of this.owned) o.destroy();
  }
}

function encodeAll(pass: GPUComputePassEncoder, calls: readonly StepCall[]): void {
  for (const call of calls) call.encode(pass);
}

/** One fused call's matrices: several stacked when they lie back to back in one unit; `row`: first row in the part. */
interface FusedMatrices {
  unit: GpuDf11Unit;
  indices: number[];
  row: number;
}

/** A part's DF11 matrices as fused calls: one when they stack in their unit (q | k | v, gate | up), else one each. */
function fusedCallsOf(df11: NonNullable<ProjectionPart['df11']>): FusedMatrices[] {
  const unit = df11[0]!.unit;
  const indices = df11.map((m) => m.index);
  if (df11.every((m) => m.unit === unit) && stacksInUnit(unit, indices)) return [{ unit, indices, row: 0 }];
  let row = 0;
  return df11.map((m) => {
    const one = { unit: m.unit, indices: [m.index], row };
    row += m.rows;
    return one;
  });
}

/**
 * fusedDecode: builders of one-token calls. `projection`: every part the weights decode per step becomes
 * fused decode + GEMV calls (fusedCallsOf); resident parts keep their bound matmul. `head`: one fused call
 * per LM head tile. One partial-sum scratch serves every call (they run in pass order). Undefined when no
 * matrix is decoded per step.
 */
async function fusedStepCalls(gpu: Gpu, weights: GpuWeights, owned: Array<{ destroy(): void }>) {
  const decoder = weights.df11Decoder;
  const all: FusedMatrices[] = [
    ...weights.layers.flatMap((l) => Object.values(l.projections).flatMap((parts) => parts.flatMap((part) => (part.df11 ? fusedCallsOf(part.df11) : [])))),
    ...weights.headTiles.flatMap((t) => (t.df11 ? [{ unit: t.df11.unit, indices: [t.df11.index], row: 0 }] : [])),
  ];
  if (!decoder || all.length === 0) return undefined;
  const gemv = await Df11GemvKernel.create(decoder);
  // (max over calls of rows + blocks) f32; not in the memory layout (a few hundred KiB at most)
  const bytes = Math.max(...all.map((m) => gemvPartialsBytes(gemvGeometry(m.unit, m.indices))));
  const partials = await gpu.createBuffer({ label: 'df11 gemv partials', size: bytes, usage: GPUBufferUsage.STORAGE });
  owned.push(partials);
  const bind = async (m: FusedMatrices, buffers: { x: GPUBuffer; bias?: GPUBuffer; out: GPUBuffer }, args: Df11GemvArgs): Promise<StepCall> => {
    const call = await gemv.bind(m.unit, m.indices, { ...buffers, partials }, args);
    owned.push(call);
    return call;
  };
  const projection = async (x: GPUBuffer, parts: readonly ProjectionPart[], plain: ProjectionCall, out: GPUBuffer, outStride: number, accumulate: boolean, activation: Activation = 'none'): Promise<StepCall[]> => {
    const calls: StepCall[] = [];
    for (const [k, part] of parts.entries()) {
      if (!part.df11) {
        const { call, rowOffset } = plain[k]!;
        calls.push({ encode: (pass) => call.encode(pass, { tokens: 1, outOffset: rowOffset, outStride, accumulate }) });
        continue;
      }
      for (const m of fusedCallsOf(part.df11)) {
        calls.push(await bind(m, { x, bias: part.bias, out }, { activation, outOffset: part.rowOffset + m.row, biasOffset: m.row, accumulate }));
      }
    }
    return calls;
  };
  const head = async (x: GPUBuffer, tiles: readonly HeadTile[], out: GPUBuffer): Promise<StepCall[]> =>
    Promise.all(tiles.map((t) => bind({ unit: t.df11!.unit, indices: [t.df11!.index], row: 0 }, { x, out }, { outOffset: t.rowStart })));
  return { projection, head };
}

/**
 * out[:, rowOffset + r] = rmsnorm(x) · Wᵀ for each part of a projection bound with that norm folded in: one
 * GEMV per part that normalises as it reads x (one-token steps), else the norm into xb and the matmuls of xb.
 */
function normThenProject(pass: GPUComputePassEncoder, norm: RmsNormCall, parts: ProjectionCall, tokens: number, outStride: number, dim: number, eps: number): void {
  if (parts.every(({ call }) => call.foldsNorm(tokens))) {
    for (const { call, rowOffset } of parts) call.encodeNormed(pass, { tokens, outOffset: rowOffset, outStride }, eps);
    return;
  }
  norm.encode(pass, { rows: tokens, dim, eps });
  project(pass, parts, tokens, outStride);
}

/** out[:, rowOffset + r] (+)= x · Wᵀ for each part of a projection; out rows are `outStride` apart. */
function project(pass: GPUComputePassEncoder, parts: ProjectionCall, tokens: number, outStride: number, accumulate = false): void {
  for (const { call, rowOffset } of parts) call.encode(pass, { tokens, outOffset: rowOffset, outStride, accumulate });
}
