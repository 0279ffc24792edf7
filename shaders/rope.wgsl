// Per-head transform and scatter, used for Q, K and V of every layer:
//   v = src head vector; optionally RMSNorm it with `norm_w` (qwen3 q_norm / k_norm);
//   optionally rotate its first rotary_dim dims (HF rotate_half RoPE: pairs (i, i + rotary_dim/2) at angle
//   pos * inv_freq[i]; the dims past rotary_dim pass through: partial rotary);
//   write it to dst[h * dst_head_stride + t' * dst_tok_stride + d], t' = t or pos0 + t (KV cache),
//   as f32 bits, or (DST_F16, the f16 KV cache) as halves packed two to a u32 by pack2x16float.
// One workgroup per (head, token).
// #include reduce

struct Params {
  n_heads: u32,
  head_dim: u32, // even, <= MAX_HEAD_DIM
  pos0: u32, // position of token 0
  src_offset: u32, // element of head 0 of token 0 in src
  src_tok_stride: u32,
  src_head_stride: u32, // head h of token t at src_offset + t * src_tok_stride + h * src_head_stride
  dst_head_stride: u32,
  dst_tok_stride: u32,
  dst_at_pos: u32, // 1: token t goes to slot pos0 + t (KV cache); 0: to slot t
  rotate: u32, // 1: apply RoPE
  rotary_dim: u32, // even, <= head_dim: dims that rotate when rotate == 1
  norm: u32, // 1: apply per-head RMSNorm first
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>; // (n_tokens, src_tok_stride), heads src_head_stride apart from src_offset
@group(0) @binding(2) var<storage, read> cos_sin: array<f32>; // (max_seq, rotary_dim / 2, 2): cos, sin of pos * inv_freq
@group(0) @binding(3) var<storage, read> norm_w: array<f32>; // (head_dim), read when norm == 1
@group(0) @binding(4) var<storage, read_write> dst: array<u32>; // see header; f32 bits or packed f16 pairs

override DST_F16: bool;

const WG: u32 = 64u;
// MAX_HEAD_DIM: declared from src/gpu/shader-constants.ts (ROPE).
var<workgroup> v: array<f32, MAX_HEAD_DIM>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.x;
  let t = wid.y;
  let hd = p.head_dim;
  let src_base = p.src_offset + t * p.src_tok_stride + h * p.src_head_stride;
  var s = 0.0;
  for (var d = lid; d < hd; d += WG) {
    let x = src[src_base + d];
    v[d] = x;
    s += x * x;
  }
  let ss = reduce_sum(lid, s);
  if (p.norm == 1u) {
    let r = 1.0 / sqrt(ss / f32(hd) + p.eps);
    for (var d = lid; d < hd; d += WG) {
      v[d] = (v[d] * r) * norm_w[d];
    }
  }
  workgroupBarrier();

  let pos = p.pos0 + t;
  let slot = select(t, pos, p.dst_at_pos == 1u);
  let dst_base = h * p.dst_head_stride + slot * p.dst_tok_stride;
  let rd = select(0u, p.rotary_dim, p.rotate == 1u);
  let half = rd / 2u;
  for (var i = lid; i < half; i += WG) {
    let x1 = v[i];
    let x2 = v[i + half];
    let c = cos_sin[(pos * half + i) * 2u];
    let sn = cos_sin[(pos * half + i) * 2u + 1u];
    v[i] = x1 * c - x2 * sn;
    v[i + half] = x2 * c + x1 * sn;
  }
  workgroupBarrier();
  if (DST_F16) {
    for (var w = lid; w < hd / 2u; w += WG) {
      dst[dst_base / 2u + w] = pack2x16float(vec2<f32>(v[2u * w], v[2u * w + 1u]));
    }
  } else {
    for (var d = lid; d < hd; d += WG) {
      dst[dst_base + d] = bitcast<u32>(v[d]);
    }
  }
}
