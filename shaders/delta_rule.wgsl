// The gated delta rule of a Gated DeltaNet layer, token by token, then its gated RMSNorm
// (HF Qwen3.5 torch_recurrent_gated_delta_rule + Qwen3_5RMSNormGated), for value head hv and its key head
// hk = hv / (value_heads / key_heads):
//   q, k = l2norm(q), l2norm(k) (x * rsqrt(sum x^2 + 1e-6)); q /= sqrt(key_dim)
//   beta = sigmoid(b), g = -exp(A_log) * softplus(a + dt_bias)
//   S = exp(g) S;  S += k ⊗ (beta (v - Sᵀ k));  o = Sᵀ q            S: (key_dim, value_dim)
//   out = rmsnorm(o) * norm_w * silu(z)
// One workgroup per value head; invocation j owns columns j, j + WG, ... of S (WG = 128: one column each at Qwen3.5's value dim), which the update touches
// independently (no barrier), and the workgroup reduces the norms. The state starts at zero when fresh == 1.
// #include reduce
// #include activation

struct Params {
  tokens: u32,
  key_heads: u32,
  value_heads: u32, // a multiple of key_heads
  key_dim: u32, // per head, <= MAX_KEY_DIM
  value_dim: u32, // per head
  proj_tok_stride: u32,
  z_offset: u32, // z[t, hv * value_dim + j] = proj[t * proj_tok_stride + z_offset + hv * value_dim + j]
  b_offset: u32, // b[t, hv] at proj[t * proj_tok_stride + b_offset + hv]
  a_offset: u32, // a[t, hv] likewise
  fresh: u32, // 1: the state starts at zero (position 0)
  eps: f32, // gated RMSNorm epsilon
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> conv: array<f32>; // (tokens, 2 key_heads key_dim + value_heads value_dim): q | k | v
@group(0) @binding(2) var<storage, read> proj: array<f32>; // (tokens, proj_tok_stride): z, b, a at their offsets
@group(0) @binding(3) var<storage, read> a_log: array<f32>; // (value_heads)
@group(0) @binding(4) var<storage, read> dt_bias: array<f32>; // (value_heads)
@group(0) @binding(5) var<storage, read> norm_w: array<f32>; // (value_dim)
@group(0) @binding(6) var<storage, read_write> state: array<f32>; // (value_heads, key_dim, value_dim)
@group(0) @binding(7) var<storage, read_write> out: array<f32>; // (tokens, value_heads value_dim)

// WG and MAX_KEY_DIM (= MAX_LINEAR_KEY_HEAD_DIM in src/format/config.ts): declared from src/gpu/shader-constants.ts (DELTA_RULE).
var<workgroup> qs: array<f32, MAX_KEY_DIM>;
var<workgroup> ks: array<f32, MAX_KEY_DIM>;

fn softplus(x: f32) -> f32 {
  // torch's threshold: x itself above 20.
  return select(log(1.0 + exp(x)), x, x > 20.0);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let hv = wid.x;
  let kd = p.key_dim;
  let vd = p.value_dim;
  let hk = hv / (p.value_heads / p.key_heads);
  let conv_stride = 2u * p.key_heads * kd + p.value_heads * vd;
  let base = hv * kd * vd;
  let v_all = p.value_heads * vd;
  if (p.fresh == 1u) {
    for (var j = lid; j < vd; j += WG) {
      for (var i = 0u; i < kd; i++) {
        state[base + i * vd + j] = 0.0;
      }
    }
  }
  let scale = 1.0 / sqrt(f32(kd));
  for (var t = 0u; t < p.tokens; t++) {
    let row = t * conv_stride;
    var sq = 0.0;
    var sk = 0.0;
    for (var i = lid; i < kd; i += WG) {
      let q = conv[row + hk * kd + i];
      let k = conv[row + p.key_heads * kd + hk * kd + i];
      qs[i] = q;
      ks[i] = k;
      sq += q * q;
      sk += k * k;
    }
    // reduce_sum's barriers also publish qs and ks.
    let rq = (1.0 / sqrt(reduce_sum(lid, sq) + 1e-6)) * scale;
    let rk = 1.0 / sqrt(reduce_sum(lid, sk) + 1e-6);
    let pr = t * p.proj_tok_stride;
    let beta = 1.0 / (1.0 + exp(-proj[pr + p.b_offset + hv]));
    let decay = exp(-exp(a_log[hv]) * softplus(proj[pr + p.a_offset + hv] + dt_bias[hv]));
    var ss = 0.0;
    for (var j = lid; j < vd; j += WG) {
      var kv = 0.0;
      for (var i = 0u; i < kd; i++) {
        let s = state[base + i * vd + j] * decay;
        state[base + i * vd + j] = s;
        kv += s * (ks[i] * rk);
      }
      let delta = (conv[row + 2u * p.key_heads * kd + hv * vd + j] - kv) * beta;
      var o = 0.0;
      for (var i = 0u; i < kd; i++) {
        let s = state[base + i * vd + j] + (ks[i] * rk) * delta;
        state[base + i * vd + j] = s;
        o += s * (qs[i] * rq);
      }
      out[t * v_all + hv * vd + j] = o;
      ss += o * o;
    }
    let r = 1.0 / sqrt(reduce_sum(lid, ss) / f32(vd) + p.eps);
    for (var j = lid; j < vd; j += WG) {
      let at = t * v_all + hv * vd + j;
      out[at] = ((out[at] * r) * norm_w[j]) * silu(proj[pr + p.z_offset + hv * vd + j]);
    }
  }
}
