// The heads of an attention layer's q | k | v projection output, all in one dispatch: one workgroup per
// (head, token) over the n_q query heads, then the n_kv key heads, then the n_kv value heads.
//   query and key heads: optionally RMSNorm them with q_norm_w / k_norm_w (qwen3's q_norm / k_norm), then
//     optionally rotate their first rotary_dim dims (HF rotate_half RoPE: pairs (i, i + rotary_dim/2) at
//     angle pos * inv_freq[i]; the dims past rotary_dim pass through: partial rotary);
//   queries go to q_out (n_tokens, n_q, head_dim) f32; keys and values to their caches at slot pos0 + t:
//     (n_kv, max_seq, head_dim) as f32 bits, or (KV_F16) as halves packed two to a u32 by pack2x16float.
// #include reduce

struct Params {
  n_q_heads: u32,
  n_kv_heads: u32,
  head_dim: u32, // even, <= MAX_HEAD_DIM
  pos0: u32, // position of token 0
  src_tok_stride: u32,
  q_head_stride: u32, // query head h of token t at t * src_tok_stride + h * q_head_stride
  k_offset: u32, // key head h at t * src_tok_stride + k_offset + h * head_dim
  v_offset: u32, // value head h at t * src_tok_stride + v_offset + h * head_dim
  max_seq: u32, // cache slots per KV head
  rotate: u32, // 1: apply RoPE to queries and keys
  rotary_dim: u32, // even, <= head_dim: dims that rotate when rotate == 1
  norm: u32, // 1: RMSNorm queries and keys first
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>; // (n_tokens, src_tok_stride) q | k | v
@group(0) @binding(2) var<storage, read> cos_sin: array<f32>; // (max_seq, rotary_dim / 2, 2): cos, sin of pos * inv_freq
@group(0) @binding(3) var<storage, read> q_norm_w: array<f32>; // (head_dim), read when norm == 1
@group(0) @binding(4) var<storage, read> k_norm_w: array<f32>; // (head_dim), read when norm == 1
@group(0) @binding(5) var<storage, read_write> q_out: array<f32>; // (n_tokens, n_q, head_dim)
@group(0) @binding(6) var<storage, read_write> k_cache: array<u32>; // (n_kv, max_seq, head_dim) f32 bits or packed f16 pairs
@group(0) @binding(7) var<storage, read_write> v_cache: array<u32>; // (n_kv, max_seq, head_dim) likewise

override KV_F16: bool;

const WG: u32 = 64u;
// MAX_HEAD_DIM: declared from src/gpu/shader-constants.ts (ROPE).
var<workgroup> v: array<f32, MAX_HEAD_DIM>;

// Head vector v as one cache row at element `base` (f32 bits or packed halves).
fn store_cache_row(is_key: bool, base: u32, lid: u32) {
  let hd = p.head_dim;
  if (KV_F16) {
    for (var w = lid; w < hd / 2u; w += WG) {
      let x = pack2x16float(vec2<f32>(v[2u * w], v[2u * w + 1u]));
      if (is_key) { k_cache[base / 2u + w] = x; } else { v_cache[base / 2u + w] = x; }
    }
  } else {
    for (var d = lid; d < hd; d += WG) {
      let x = bitcast<u32>(v[d]);
      if (is_key) { k_cache[base + d] = x; } else { v_cache[base + d] = x; }
    }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wid.y;
  let hd = p.head_dim;
  // which head: query h < n_q, then key, then value (uniform per workgroup)
  let is_query = wid.x < p.n_q_heads;
  let kv = wid.x - min(wid.x, p.n_q_heads); // key/value index counted from the first key head
  let is_key = !is_query && kv < p.n_kv_heads;
  let kv_head = select(kv - p.n_kv_heads, kv, is_key);
  if (!is_query && kv_head >= p.n_kv_heads) {
    return;
  }
  var src_base = t * p.src_tok_stride;
  if (is_query) {
    src_base += wid.x * p.q_head_stride;
  } else if (is_key) {
    src_base += p.k_offset + kv_head * hd;
  } else {
    src_base += p.v_offset + kv_head * hd;
  }
  var s = 0.0;
  for (var d = lid; d < hd; d += WG) {
    let x = src[src_base + d];
    v[d] = x;
    s += x * x;
  }
  let ss = reduce_sum(lid, s);
  let transform = is_query || is_key;
  if (transform && p.norm == 1u) {
    let r = 1.0 / sqrt(ss / f32(hd) + p.eps);
    for (var d = lid; d < hd; d += WG) {
      let w = select(k_norm_w[d], q_norm_w[d], is_query);
      v[d] = (v[d] * r) * w;
    }
  }
  workgroupBarrier();

  let pos = p.pos0 + t;
  let rd = select(0u, p.rotary_dim, transform && p.rotate == 1u);
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
  if (is_query) {
    let base = (t * p.n_q_heads + wid.x) * hd;
    for (var d = lid; d < hd; d += WG) {
      q_out[base + d] = v[d];
    }
  } else {
    store_cache_row(is_key, (kv_head * p.max_seq + pos) * hd, lid);
  }
}
