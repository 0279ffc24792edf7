// Causal GQA attention over one layer's KV cache, online softmax in blocks of WG keys.
// One workgroup per (query head, token); query token t sits at position p = pos0 + t and sees keys
// max(0, p - window + 1)..p (window 0: keys 0..p).
// #include reduce

struct Params {
  n_heads: u32,
  n_kv_heads: u32, // divides n_heads
  head_dim: u32, // <= MAX_HEAD_DIM
  pos0: u32,
  max_seq: u32,
  scale: f32, // softmax scale of q.k (1 / sqrt(head_dim) unless the model says otherwise)
  window: u32, // sliding window in positions; 0 = full causal
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>; // (n_tokens, n_heads, head_dim)
@group(0) @binding(2) var<storage, read> k_cache: array<f32>; // (n_kv_heads, max_seq, head_dim)
@group(0) @binding(3) var<storage, read> v_cache: array<f32>; // (n_kv_heads, max_seq, head_dim)
@group(0) @binding(4) var<storage, read_write> out: array<f32>; // (n_tokens, n_heads * head_dim)

const WG: u32 = 64u;
const MAX_HEAD_DIM: u32 = 256u;
const DIMS_PER_THREAD: u32 = MAX_HEAD_DIM / WG;
const NEG_BIG: f32 = -3.0e38;

var<workgroup> qs: array<f32, MAX_HEAD_DIM>;
var<workgroup> probs: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.x;
  let t = wid.y;
  let hd = p.head_dim;
  let kv_base = (h / (p.n_heads / p.n_kv_heads)) * p.max_seq * hd;
  let q_base = (t * p.n_heads + h) * hd;
  for (var d = lid; d < hd; d += WG) {
    qs[d] = q[q_base + d];
  }
  workgroupBarrier();

  let len = p.pos0 + t + 1u; // keys visible to this query end here
  let first = select(0u, len - p.window, p.window != 0u && len > p.window); // ... and start here
  var m = NEG_BIG; // running max of the scores
  var l = 0.0; // running sum of exp(score - m)
  var acc: array<f32, DIMS_PER_THREAD>;
  for (var s0 = first; s0 < len; s0 += WG) {
    let s = s0 + lid;
    var score = NEG_BIG;
    if (s < len) {
      let k_row = kv_base + s * hd;
      var dot = 0.0;
      for (var d = 0u; d < hd; d++) {
        dot += qs[d] * k_cache[k_row + d];
      }
      score = dot * p.scale;
    }
    let m_new = max(m, reduce_max(lid, score));
    let e = select(0.0, exp(score - m_new), s < len);
    probs[lid] = e;
    let correction = exp(m - m_new);
    l = l * correction + reduce_sum(lid, e); // reduce_sum's barriers also publish probs
    let n = min(WG, len - s0);
    for (var j = 0u; j < DIMS_PER_THREAD; j++) {
      let d = lid + j * WG;
      if (d < hd) {
        var a = acc[j] * correction;
        for (var i = 0u; i < n; i++) {
          a += probs[i] * v_cache[kv_base + (s0 + i) * hd + d];
        }
        acc[j] = a;
      }
    }
    m = m_new;
    workgroupBarrier(); // probs is rewritten by the next block
  }
  let out_base = (t * p.n_heads + h) * hd;
  for (var j = 0u; j < DIMS_PER_THREAD; j++) {
    let d = lid + j * WG;
    if (d < hd) {
      out[out_base + d] = acc[j] / l;
    }
  }
}
