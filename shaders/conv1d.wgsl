// Causal depthwise conv1d over tokens with a rolling state, then SiLU (a Gated DeltaNet's q | k | v,
// HF Qwen3.5 causal_conv1d_fn / causal_conv1d_update):
//   out[t, c] = silu(sum_j w[c, j] * x[t - (K - 1) + j, c]),
// where x before token 0 comes from `state`, the last K - 1 inputs of the earlier steps (zeros when
// fresh == 1: no earlier tokens). Afterwards `state` holds the last K - 1 inputs of state ++ x.
// One invocation per channel: its tokens in order, so the state update needs no barrier.
// #include activation

struct Params {
  tokens: u32,
  channels: u32,
  kernel: u32, // K >= 1
  src_tok_stride: u32, // x[t, c] = src[t * src_tok_stride + c]
  fresh: u32, // 1: the state reads as zeros (position 0)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>; // (tokens, src_tok_stride), channels from 0
@group(0) @binding(2) var<storage, read> weight: array<f32>; // (channels, K)
@group(0) @binding(3) var<storage, read_write> state: array<f32>; // (K - 1, channels)
@group(0) @binding(4) var<storage, read_write> out: array<f32>; // (tokens, channels)

// WG (invocations per workgroup, one channel each): declared from src/gpu/shader-constants.ts (CONV1D).

// Input s of the sequence state ++ x, counted from token 0 (s < 0: the state).
fn seq_input(c: u32, s: i32) -> f32 {
  if (s >= 0) {
    return src[u32(s) * p.src_tok_stride + c];
  }
  if (p.fresh == 1u) {
    return 0.0;
  }
  return state[u32(i32(p.kernel) - 1 + s) * p.channels + c];
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = (wid.x + wid.y * nwg.x) * WG + lid;
  if (c >= p.channels) {
    return;
  }
  let k = i32(p.kernel);
  for (var t = 0u; t < p.tokens; t++) {
    var acc = 0.0;
    for (var j = 0; j < k; j++) {
      acc += weight[c * p.kernel + u32(j)] * seq_input(c, i32(t) - (k - 1) + j);
    }
    out[t * p.channels + c] = silu(acc);
  }
  // state[m] = (state ++ x)[tokens + m]: it reads state[m + tokens] (tokens >= 1), not yet overwritten.
  for (var m = 0; m < k - 1; m++) {
    state[u32(m) * p.channels + c] = seq_input(c, i32(p.tokens) + m - (k - 1));
  }
}
