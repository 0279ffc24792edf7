/**
 * CPU references (f64) of a Gated DeltaNet layer's kernels, written from HF transformers' Qwen3.5 math
 * (causal_conv1d_update, torch_recurrent_gated_delta_rule, Qwen3_5RMSNormGated), token by token:
 * test/kernels-linear-attention.test.ts compares shaders/conv1d.wgsl and shaders/delta_rule.wgsl with them.
 */
import type { DeltaRuleArgs } from '../src/gpu/kernels/delta-rule.ts';

const silu = (x: number): number => x / (1 + Math.exp(-x));
const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
const softplus = (x: number): number => (x > 20 ? x : Math.log1p(Math.exp(x)));

/**
 * x: (tokens, srcTokenStride), channels from 0; weight: (channels, kernel); state: (kernel - 1, channels),
 * or null for zeros. Returns silu(conv) (tokens, channels) and the new state (the last kernel - 1 inputs).
 */
export function conv1dReference(
  x: Float32Array,
  a: { tokens: number; channels: number; kernel: number; srcTokenStride: number },
  weight: Float32Array,
  state: Float32Array | null,
): { out: Float64Array; state: Float64Array } {
  const { tokens, channels: C, kernel: K } = a;
  // The sequence state ++ x per channel.
  const seq = (c: number, s: number): number => (s >= 0 ? x[s * a.srcTokenStride + c]! : state ? state[(K - 1 + s) * C + c]! : 0);
  const out = new Float64Array(tokens * C);
  for (let t = 0; t < tokens; t++) {
    for (let c = 0; c < C; c++) {
      let acc = 0;
      for (let j = 0; j < K; j++) acc += weight[c * K + j]! * seq(c, t - (K - 1) + j);
      out[t * C + c] = silu(acc);
    }
  }
  const next = new Float64Array((K - 1) * C);
  for (let m = 0; m < K - 1; m++) for (let c = 0; c < C; c++) next[m * C + c] = seq(c, tokens + m - (K - 1));
  return { out, state: next };
}

/** The kernel's arguments less `fresh` (the reference takes the starting state itself). */
export type DeltaRuleShape = Omit<DeltaRuleArgs, 'fresh'>;

/**
 * conv: (tokens, 2 keyHeads keyHeadDim + valueHeads valueHeadDim) q | k | v; proj: rows with z, b, a;
 * state: (valueHeads, keyHeadDim, valueHeadDim) or null for zeros. Returns the gated-normed output
 * (tokens, valueHeads valueHeadDim) and the new state.
 */
export function deltaRuleReference(
  conv: Float32Array,
  proj: Float32Array,
  aLog: Float32Array,
  dtBias: Float32Array,
  normW: Float32Array,
  state: Float32Array | null,
  a: DeltaRuleShape,
): { out: Float64Array; state: Float64Array } {
  const { tokens, keyHeads: nk, valueHeads: nv, keyHeadDim: dk, valueHeadDim: dv } = a;
  const S = state ? Float64Array.from(state) : new Float64Array(nv * dk * dv);
  const stride = 2 * nk * dk + nv * dv;
  const out = new Float64Array(tokens * nv * dv);
  const l2 = (v: number[]): number[] => {
    const inv = 1 / Math.sqrt(v.reduce((s, x) => s + x * x, 0) + 1e-6);
    return v.map((x) => x * inv);
  };
  for (let t = 0; t < tokens; t++) {
    for (let hv = 0; hv < nv; hv++) {
      const hk = Math.floor(hv / (nv / nk)); // repeat_interleave: consecutive value heads share a key head
      const q = l2(Array.from(conv.subarray(t * stride + hk * dk, t * stride + (hk + 1) * dk))).map((x) => x / Math.sqrt(dk));
      const k = l2(Array.from(conv.subarray(t * stride + nk * dk + hk * dk, t * stride + nk * dk + (hk + 1) * dk)));
      const v = conv.subarray(t * stride + 2 * nk * dk + hv * dv, t * stride + 2 * nk * dk + (hv + 1) * dv);
      const row = t * a.projTokenStride;
      const beta = sigmoid(proj[row + a.bOffset + hv]!);
      const g = -Math.exp(aLog[hv]!) * softplus(proj[row + a.aOffset + hv]! + dtBias[hv]!);
      const base = hv * dk * dv;
      for (let i = 0; i < dk * dv; i++) S[base + i]! *= Math.exp(g);
      const o = new Float64Array(dv);
      for (let j = 0; j < dv; j++) {
        let kv = 0;
        for (let i = 0; i < dk; i++) kv += S[base + i * dv + j]! * k[i]!;
        const delta = (v[j]! - kv) * beta;
        for (let i = 0; i < dk; i++) S[base + i * dv + j]! += k[i]! * delta;
        for (let i = 0; i < dk; i++) o[j]! += S[base + i * dv + j]! * q[i]!;
      }
      const inv = 1 / Math.sqrt(o.reduce((s, x) => s + x * x, 0) / dv + a.eps);
      for (let j = 0; j < dv; j++) out[t * nv * dv + hv * dv + j] = o[j]! * inv * normW[j]! * silu(proj[row + a.zOffset + hv * dv + j]!);
    }
  }
  return { out, state: S };
}
