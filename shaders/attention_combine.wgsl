// Merge the per-split partials of attention.wgsl (flash-decoding): for each query row,
//   out = sum_s exp(m_s - M) acc_s / sum_s exp(m_s - M) l_s,  M = max_s m_s.
// A split that saw none of a row's keys has l_s = 0 and acc_s = 0. One workgroup per row.

struct Params {
  n_heads: u32,
  group: u32, // n_heads / n_kv_heads
  head_dim: u32,
  n_tokens: u32,
  n_splits: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>; // (n_kv_heads, group * n_tokens, n_splits, 2 + head_dim)
@group(0) @binding(2) var<storage, read_write> out: array<f32>; // (n_tokens, n_heads * head_dim)

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x; // kv_head * rows_total + i
  let hd = p.head_dim;
  let rows_total = p.group * p.n_tokens;
  let i = row % rows_total;
  let h = (row / rows_total) * p.group + i % p.group;
  let base = row * p.n_splits * (2u + hd);
  var m = -3.0e38;
  for (var sp = 0u; sp < p.n_splits; sp++) {
    m = max(m, partials[base + sp * (2u + hd)]);
  }
  var l = 0.0;
  for (var sp = 0u; sp < p.n_splits; sp++) {
    let at = base + sp * (2u + hd);
    l += partials[at + 1u] * exp(partials[at] - m);
  }
  let out_base = ((i / p.group) * p.n_heads + h) * hd;
  for (var d = lid; d < hd; d += WG) {
    var a = 0.0;
    for (var sp = 0u; sp < p.n_splits; sp++) {
      let at = base + sp * (2u + hd);
      a += partials[at + 2u + d] * exp(partials[at] - m);
    }
    out[out_base + d] = a / l;
  }
}
