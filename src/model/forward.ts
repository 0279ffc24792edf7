/**
 * The transformer forward on the GPU for the Llama family (llama, mistral, qwen2, qwen3: differences are
 * spec flags), in the spirit of llama2.c's run.c: every buffer is allocated once up front for the planned
 * context and chunk size, every kernel is bound once, and `encode` reads top to bottom.
 *
 * Weights come from GpuWeights, whose prepare* calls (a no-op or a DF11 decode into the transient buffer)
 * sit where a layer or head tile is about to be used; the forward never asks which encoding is behind them.
 */
import { Df11Error } from '../errors.ts';
import type { ModelSpec } from '../format/model-spec.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { AttentionKernel, type AttentionCall } from '../gpu/kernels/attention.ts';
import { EmbedKernel, type EmbedCall } from '../gpu/kernels/embed.ts';
import { MatmulKernel, type Activation, type MatmulCall, type MatmulOptions } from '../gpu/kernels/matmul.ts';
import { RmsNormKernel, type RmsNormCall } from '../gpu/kernels/rmsnorm.ts';
import { RopeKernel, type HeadLayout, type RopeCall } from '../gpu/kernels/rope.ts';
import { KvCache } from './kv-cache.ts';
import { ropeTable, type RopeFrequencyPrecision } from './rope-table.ts';
import type { GpuWeights, ProjectionPart } from './weights.ts';

export interface ForwardOptions {
  /** Positions the KV cache holds. */
  contextLength: number;
  /** Most tokens one `run` takes (the prefill chunk). */
  maxTokens: number;
  /** See RopeFrequencyPrecision: 'bf16' for BF16 checkpoints, to match HF transformers. */
  ropePrecision: RopeFrequencyPrecision;
  /** GEMV/GEMM choices (default: what suits the adapter); tests force the GPU ones on SwiftShader. */
  matmul?: MatmulOptions;
}

/** Activations, f32, for up to `maxTokens` tokens (T) at a time. */
interface Activations {
  x: GPUBuffer; // (T, hidden) residual stream
  xb: GPUBuffer; // (T, hidden) RMSNorm output feeding attention or the MLP
  qkv: GPUBuffer; // (T, (n_heads + 2 * n_kv_heads) * head_dim) query | key | value projections
  qr: GPUBuffer; // (T, n_heads, head_dim) queries after [q_norm and] RoPE
  att: GPUBuffer; // (T, n_heads * head_dim) attention output
  gateUp: GPUBuffer; // (T, 2 * intermediate) gate | up projections
  xf: GPUBuffer; // (1, hidden) final-normed last position
  logits: GPUBuffer; // (vocab) last position's logits
  ropeCosSin: GPUBuffer; // (context, head_dim / 2, 2)
}

/** The matmuls of one projection (one when its matrices are fused), each with its first output row. */
type ProjectionCall = Array<{ call: MatmulCall; rowOffset: number }>;

interface LayerCalls {
  attnNorm: RmsNormCall; // x → xb
  qkv: ProjectionCall; // xb → qkv (+ bias)
  ropeQ: RopeCall; // qkv → qr
  ropeK: RopeCall; // qkv → k cache
  storeV: RopeCall; // qkv → v cache (no rotation)
  attention: AttentionCall; // qr, caches → att
  o: ProjectionCall; // x += att · Woᵀ
  mlpNorm: RmsNormCall; // x → xb
  gateUp: ProjectionCall; // xb → gateUp
  down: ProjectionCall; // x += (silu(gate) * up) · Wdᵀ, the activation applied as the matmul reads gateUp
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
    private readonly calls: { embed: EmbedCall; layers: LayerCalls[]; finalNorm: RmsNormCall; head: MatmulCall[] },
    /** Everything above that holds GPU memory (the weights belong to the caller). */
    private readonly owned: ReadonlyArray<{ destroy(): void }>,
  ) {}

  static async create(gpu: Gpu, weights: GpuWeights, options: ForwardOptions): Promise<Forward> {
    const spec = weights.spec;
    const { contextLength: ctx, maxTokens: T } = options;
    const { hiddenSize: h, intermediateSize: f, numHeads: nH, numKvHeads: nKv, headDim: hd, vocabSize } = spec;
    const owned: Array<{ destroy(): void }> = [];
    const f32 = async (label: string, n: number, usage = 0): Promise<GPUBuffer> => {
      const b = await gpu.createBuffer({ label, size: Math.ceil((n * 4) / 16) * 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC | usage });
      owned.push(b);
      return b;
    };
    try {
      const kv = await KvCache.create(gpu, spec, ctx);
      owned.push(kv);
      const act: Activations = {
        x: await f32('x', T * h),
        xb: await f32('xb', T * h),
        qkv: await f32('qkv', T * (nH + 2 * nKv) * hd),
        qr: await f32('qr', T * nH * hd),
        att: await f32('att', T * nH * hd),
        gateUp: await f32('gate|up', T * 2 * f),
        xf: await f32('xf', h),
        logits: await f32('logits', vocabSize),
        ropeCosSin: await f32('rope cos/sin', (ctx * hd) / 2 * 2),
      };
      gpu.writeBuffer(act.ropeCosSin, 0, ropeTable(spec.rope, hd, ctx, options.ropePrecision));
      const readback = await gpu.createBuffer({ label: 'logits readback', size: Math.ceil((vocabSize * 4) / 16) * 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      owned.push(readback);

      const [embed, rmsnorm, matmul, rope, attention] = await Promise.all([
        EmbedKernel.create(gpu),
        RmsNormKernel.create(gpu),
        MatmulKernel.create(gpu, options.matmul),
        RopeKernel.create(gpu),
        AttentionKernel.create(gpu),
      ]);
      const bound = async <C extends { destroy(): void }>(call: Promise<C>): Promise<C> => {
        const c = await call;
        owned.push(c);
        return c;
      };
      const projection = async (x: GPUBuffer, parts: ProjectionPart[], out: GPUBuffer, activation: Activation = 'none'): Promise<ProjectionCall> =>
        Promise.all(parts.map(async (part) => ({ call: await bound(matmul.bind(x, part.view, part.bias, out, activation)), rowOffset: part.rowOffset })));
      const layers: LayerCalls[] = [];
      for (let i = 0; i < spec.numLayers; i++) {
        const w = weights.layers[i]!;
        const p = w.projections;
        layers.push({
          attnNorm: await bound(rmsnorm.bind(act.x, w.inputNorm, act.xb)),
          qkv: await projection(act.xb, p.qkv, act.qkv),
          ropeQ: await bound(rope.bind(act.qkv, act.ropeCosSin, w.qNorm ?? w.inputNorm, act.qr)),
          ropeK: await bound(rope.bind(act.qkv, act.ropeCosSin, w.kNorm ?? w.inputNorm, kv.k[i]!)),
          storeV: await bound(rope.bind(act.qkv, act.ropeCosSin, w.inputNorm, kv.v[i]!)),
          attention: await bound(attention.bind(act.qr, kv.k[i]!, kv.v[i]!, act.att)),
          o: await projection(act.att, p.o, act.x),
          mlpNorm: await bound(rmsnorm.bind(act.x, w.postNorm, act.xb)),
          gateUp: await projection(act.xb, p.gateUp, act.gateUp),
          down: await projection(act.gateUp, p.down, act.x, 'silu'),
        });
      }
      const calls = {
        embed: await bound(embed.bind(weights.embeddingRows, act.x)),
        layers,
        finalNorm: await bound(rmsnorm.bind(act.x, weights.finalNorm, act.xf)),
        head: await Promise.all(weights.headTiles.map((t) => bound(matmul.bind(act.xf, t.view, undefined, act.logits)))),
      };
      return new Forward(gpu, spec, weights, kv, T, act, readback, calls, owned);
    } catch (e) {
      for (const o of owned) o.destroy();
      throw e;
    }
  }

  /** Bytes of activations (incl. the RoPE table and the logits readback). */
  get activationBytes(): number {
    return Object.values(this.act).reduce((a, b) => a + b.size, 0) + this.readback.size;
  }

  /**
   * Run `ids` at positions pos..pos+n-1 (their K/V land in the cache) and, if asked, return the last
   * position's logits.  (vocab)
   */
  async run(ids: Uint32Array, pos: number, wantLogits: boolean): Promise<Float32Array | undefined> {
    const n = ids.length;
    if (n < 1 || n > this.maxTokens) throw new Df11Error('bad-request', `a forward step takes 1..${this.maxTokens} tokens, got ${n}`);
    if (pos + n > this.kv.maxSeq) throw new Df11Error('context-overflow', `positions ${pos}..${pos + n - 1} exceed the context of ${this.kv.maxSeq}`);
    this.gpu.assertAlive();
    for (const commands of this.encode(ids, pos, wantLogits)) this.gpu.device.queue.submit([commands]);
    if (!wantLogits) return undefined;
    await this.readback.mapAsync(GPUMapMode.READ);
    const logits = new Float32Array(this.readback.getMappedRange().slice(0, this.spec.vocabSize * 4));
    this.readback.unmap();
    return logits;
  }

  /**
   * Record the forward, yielding a command buffer after the embedding and after each layer: the caller
   * submits each at once, so the GPU runs layer l while the CPU records layer l + 1.
   */
  private *encode(ids: Uint32Array, pos: number, wantLogits: boolean): Generator<GPUCommandBuffer> {
    const { spec, weights, calls, act } = this;
    const n = ids.length;
    const { hiddenSize: h, numHeads: nH, numKvHeads: nKv, headDim: hd, rmsNormEps: eps } = spec;
    const qkNormEps = spec.qkNorm ? eps : undefined;
    const qkvDim = (nH + 2 * nKv) * hd;
    const queries: HeadLayout = { headStride: hd, tokenStride: nH * hd, atPosition: false };
    const cache: HeadLayout = { headStride: this.kv.maxSeq * hd, tokenStride: hd, atPosition: true };
    const device = this.gpu.device;
    let encoder = device.createCommandEncoder({ label: 'embed' });

    // x = embedding rows of the tokens
    weights.prepareEmbedding(encoder, ids);
    let pass = encoder.beginComputePass({ label: 'embed' });
    calls.embed.encode(pass, { tokens: n, dim: h, rowsOffset: 0 });
    pass.end();
    yield encoder.finish();

    for (let l = 0; l < spec.numLayers; l++) {
      const c = calls.layers[l]!;
      encoder = device.createCommandEncoder({ label: `layer ${l}` });
      pass = encoder.beginComputePass({ label: `layer ${l}` });
      weights.prepareLayer(pass, l);
      // attention: xb = rmsnorm(x); q | k | v = xb · Wᵀ (+ bias)
      c.attnNorm.encode(pass, { rows: n, dim: h, eps });
      project(pass, c.qkv, n, qkvDim);
      // [per-head q/k RMSNorm], RoPE; k and v go to the cache at positions pos..pos+n-1
      const heads = { tokens: n, headDim: hd, pos0: pos, srcTokenStride: qkvDim };
      c.ropeQ.encode(pass, { ...heads, heads: nH, srcOffset: 0, dst: queries, rotate: true, normEps: qkNormEps });
      c.ropeK.encode(pass, { ...heads, heads: nKv, srcOffset: nH * hd, dst: cache, rotate: true, normEps: qkNormEps });
      c.storeV.encode(pass, { ...heads, heads: nKv, srcOffset: (nH + nKv) * hd, dst: cache, rotate: false });
      // att = softmax(q kᵀ / sqrt(head_dim), causal) v over the cache; x += att · Woᵀ
      c.attention.encode(pass, { tokens: n, heads: nH, kvHeads: nKv, headDim: hd, pos0: pos, maxSeq: this.kv.maxSeq });
      project(pass, c.o, n, h, true);
      // MLP: xb = rmsnorm(x); gate | up = xb · Wᵀ; x += (silu(gate) * up) · Wdᵀ
      c.mlpNorm.encode(pass, { rows: n, dim: h, eps });
      project(pass, c.gateUp, n, 2 * spec.intermediateSize);
      project(pass, c.down, n, h, true);
      pass.end();
      yield encoder.finish();
    }

    if (wantLogits) {
      // logits = rmsnorm(x[last]) · W_headᵀ, one vocabulary tile at a time
      encoder = device.createCommandEncoder({ label: 'lm head' });
      pass = encoder.beginComputePass({ label: 'lm head' });
      calls.finalNorm.encode(pass, { rows: 1, dim: h, eps, inOffset: (n - 1) * h });
      weights.headTiles.forEach((tile, j) => {
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

/** out[:, rowOffset + r] (+)= x · Wᵀ for each part of a projection; out rows are `outStride` apart. */
function project(pass: GPUComputePassEncoder, parts: ProjectionCall, tokens: number, outStride: number, accumulate = false): void {
  for (const { call, rowOffset } of parts) call.encode(pass, { tokens, outOffset: rowOffset, outStride, accumulate });
}
