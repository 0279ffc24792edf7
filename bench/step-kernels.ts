/**
 * One decode step's kernels, each timed alone (suite `kernels` of bench/forward-suite.ts): the forward's own
 * kernel wrappers at a model shape's sizes, one token, the KV cache filled to `context` positions. Each
 * kernel is recorded `perSubmit` times back to back (each dispatch in its own pass, as dependent as in a
 * step) and timed by the wall clock over the submit, like the attention suite; weight matrices rotate over
 * enough copies that they come from memory, not from the L2 cache, as in a real step. (Timestamps of single
 * passes read 2-3x high on the H200 through Dawn, even unquantized: bench/runs/2026-12-02c-h200/.) The line
 * sums the kernels to a step (layers x per-layer kernels + head), to read beside the forward suite's step.
 */
import type { ModelSpec } from '../src/format/model-spec.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { AttentionKernel, attentionScratchBytes } from '../src/gpu/kernels/attention.ts';
import { KV_DTYPE_BYTES, type KvDtype } from '../src/gpu/kernels/kv-dtype.ts';
import { MatmulKernel, type Activation, type FoldedNorm, type MatmulCall } from '../src/gpu/kernels/matmul.ts';
import { RmsNormKernel } from '../src/gpu/kernels/rmsnorm.ts';
import { RopeKernel } from '../src/gpu/kernels/rope.ts';
import { tiledNormalBf16 } from '../src/testing/random-weights.ts';
import { wallClock } from './gpu-timing.ts';
import { emit, sig } from './report.ts';

/** Weight bytes a rotation of copies must exceed so that each dispatch reads from memory (H200 L2: 50 MB). */
const ROTATE_BYTES = 256 * 2 ** 20;

export async function measureStepKernels(gpu: Gpu, name: string, spec: ModelSpec, kvCache: KvDtype, context: number, iters: number, perSubmit: number): Promise<void> {
  const { hiddenSize: h, numHeads: nH, numKvHeads: nKv, headDim: hd, intermediateSize: inter, vocabSize: vocab } = spec;
  const owned: Array<{ destroy(): void }> = [];
  const buffer = async (label: string, bytes: number): Promise<GPUBuffer> => {
    const b = await gpu.createBuffer({ label, size: Math.ceil(bytes / 16) * 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    owned.push(b);
    return b;
  };
  try {
    const matmul = await MatmulKernel.create(gpu);
    const qkvRows = (nH + 2 * nKv) * hd;
    const x = await buffer('x', 4 * Math.max(h, 2 * inter, qkvRows, nH * hd));
    const out = await buffer('out', 4 * Math.max(h, 2 * inter, qkvRows, vocab));
    const norm = await buffer('norm', 4 * h);
    gpu.writeBuffer(x, 0, new Float32Array(x.size / 4).fill(0.01));
    gpu.writeBuffer(norm, 0, new Float32Array(h).fill(1));
    /** Copies of a rows × cols BF16 matrix, bound as GEMVs, enough of them to exceed ROTATE_BYTES. */
    const gemvs = async (rows: number, cols: number, activation: Activation = 'none', folded?: FoldedNorm): Promise<MatmulCall[]> => {
      const bytes = rows * cols * 2;
      const copies = Math.max(1, Math.ceil(ROTATE_BYTES / bytes));
      const w = tiledNormalBf16(rows * cols, 7, 2 ** 20);
      const calls: MatmulCall[] = [];
      for (let i = 0; i < copies; i++) {
        const wb = await buffer(`w ${rows}x${cols} #${i}`, bytes);
        gpu.writeBuffer(wb, 0, w);
        const call = await matmul.bind(x, { binding: wb, offset: 0, rows, cols }, undefined, out, activation, folded);
        owned.push(call);
        calls.push(call);
      }
      return calls;
    };
    /** ms per dispatch of `record`, `perSubmit` of them a submit (median of `iters` submits). */
    const timed = (record: (pass: GPUComputePassEncoder) => void): Promise<number> =>
      wallClock(gpu, iters, perSubmit, (encoder) => {
        const pass = encoder.beginComputePass();
        record(pass);
        pass.end();
      });
    /** ms per dispatch of `calls` taken in turn. */
    const rotating = (calls: MatmulCall[], encode: (c: MatmulCall, pass: GPUComputePassEncoder) => void): Promise<number> => {
      let i = 0;
      return timed((pass) => encode(calls[i++ % calls.length]!, pass));
    };
    const folded = { x, weight: norm };
    const [qkv, o, gateUp, down] = [
      await gemvs(qkvRows, h, 'none', folded),
      await gemvs(h, nH * hd),
      await gemvs(2 * inter, h, 'none', folded),
      await gemvs(h, inter, spec.activation),
    ];
    const ms: Record<string, number> = {
      qkv_normed: await rotating(qkv, (c, pass) => c.encodeNormed(pass, { tokens: 1 }, 1e-5)),
      o: await rotating(o, (c, pass) => c.encode(pass, { tokens: 1, accumulate: true })),
      gate_up_normed: await rotating(gateUp, (c, pass) => c.encodeNormed(pass, { tokens: 1 }, 1e-5)),
      down_act: await rotating(down, (c, pass) => c.encode(pass, { tokens: 1, accumulate: true })),
    };
    // q | k | v heads into the cache, then attention over `context` positions.
    const cacheBytes = nKv * context * hd * KV_DTYPE_BYTES[kvCache];
    const [q, k, v, att] = [await buffer('q', 4 * nH * hd), await buffer('k', cacheBytes), await buffer('v', cacheBytes), await buffer('att', 4 * nH * hd)];
    const table = await buffer('cos sin', 4 * context * hd);
    const rope = await RopeKernel.create(gpu, kvCache);
    const heads = await rope.bind({ src: x, cosSin: table, qNorm: norm, kNorm: norm, q, kCache: k, vCache: v });
    owned.push(heads);
    ms.rope_heads = await timed((pass) =>
      heads.encode(pass, { tokens: 1, qHeads: nH, kvHeads: nKv, headDim: hd, pos0: context - 1, maxSeq: context, srcTokenStride: qkvRows, kOffset: nH * hd, vOffset: (nH + nKv) * hd, rotate: true }),
    );
    const attention = await AttentionKernel.create(gpu, kvCache);
    const scratch = await buffer('partials', attentionScratchBytes({ numHeads: nH, numKvHeads: nKv, headDim: hd }, attention.tiling, context, 1));
    const attend = await attention.bind(q, k, v, att, scratch);
    owned.push(attend);
    ms.attention = await timed((pass) => attend.encode(pass, { tokens: 1, heads: nH, kvHeads: nKv, headDim: hd, pos0: context - 1, maxSeq: context }));
    // The LM head (one token): final RMSNorm and the head GEMV (one tile: the whole vocabulary when it binds).
    const rms = await (await RmsNormKernel.create(gpu)).bind(x, norm, out);
    owned.push(rms);
    ms.final_norm = await timed((pass) => rms.encode(pass, { rows: 1, dim: h, eps: 1e-5 }));
    const headRows = Math.min(vocab, Math.floor(gpu.maxBindingSize / (2 * h) / 128) * 128);
    const head = await gemvs(headRows, h);
    ms.head_tile = await rotating(head, (c, pass) => c.encode(pass, { tokens: 1 }));
    const perLayer = ['qkv_normed', 'rope_heads', 'attention', 'o', 'gate_up_normed', 'down_act'].reduce((a, key) => a + ms[key]!, 0);
    const headMs = ms.final_norm! + ms.head_tile! * Math.ceil(vocab / headRows);
    const sumMs = spec.numLayers * perLayer + headMs;
    const layerWeightBytes = 2 * (qkvRows * h + h * nH * hd + 2 * inter * h + h * inter);
    emit({
      bench: 'step-kernels',
      shape: name,
      kv_cache: kvCache,
      context,
      ms_per_dispatch: Object.fromEntries(Object.entries(ms).map(([key, value]) => [key, sig(value)])),
      layer_ms: sig(perLayer),
      layer_weight_gbps: sig(layerWeightBytes / (perLayer * 1e6)),
      step_kernels_ms: sig(sumMs),
    });
  } finally {
    for (const o of owned) o.destroy();
  }
}
