// Merge the per-split partials of attention.wgsl / attention_decode.wgsl (flash-decoding): for each query row,
//   out = sum_s exp(m_s - M) acc_s / sum_s exp(m_s - M) l_s,  M = max_s m_s.
// A split that saw none of a row's keys has l_s = 0 and acc_s = 0. One workgroup per row; the splits are
// spread over the invocations (a serial walk over hundreds of splits per row was latency-bound), and every
// sum runs in an order fixed by WG and head_dim alone.
// #include reduce

struct Params {
  n_heads: u32,
  group: u32, // n_heads / n_kv_heads
  head_dim: u32, // <= WG
  n_tokens: u32,
  n_splits: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>; // (n_kv_heads, group * n_tokens, n_splits, 2 + head_dim)
@group(0) @binding(2) var<storage, read_write> out: array<f32>; // (n_tokens, n_heads * head_dim)

const WG: u32 = 256u;
const NEG_BIG: f32 = -3.0e38;
const BATCH: u32 = 16u; // splits whose (max, acc) loads one invocation has in flight in the acc sum

var<workgroup> acc_part: array<f32, WG>; // one partial sum of acc per (slice, d)

// (max, acc[d]) of splits sp0, sp0 + slices, .. (BATCH of them, those < n_splits).
fn load_batch(ms: ptr<function, array<f32, BATCH>>, xs: ptr<function, array<f32, BATCH>>, base: u32, stride: u32, sp0: u32, slices: u32, d: u32) {
  for (var b = 0u; b < BATCH; b++) {
    let sp = sp0 + b * slices;
    if (sp < p.n_splits) {
      let at = base + sp * stride;
      (*ms)[b] = partials[at];
      (*xs)[b] = partials[at + 2u + d];
    }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x; // kv_head * rows_total + i
  let hd = p.head_dim;
  let stride = 2u + hd;
  let rows_total = p.group * p.n_tokens;
  let i = row % rows_total;
  let h = (row / rows_total) * p.group + i % p.group;
  let base = row * p.n_splits * stride;

  // Invocation lid sums dimension d over the splits of its slice; the slices are added in order after.
  // Its first batch of (max, acc) loads is issued before the reductions, which do not need it.
  let slices = WG / hd;
  let d = lid % hd;
  let slice = lid / hd;
  var ms = array<f32, BATCH>();
  var xs = array<f32, BATCH>();
  load_batch(&ms, &xs, base, stride, slice, slices, d);

  var m_local = NEG_BIG;
  for (var sp = lid; sp < p.n_splits; sp += WG) {
    m_local = max(m_local, partials[base + sp * stride]);
  }
  let m = reduce_max(lid, m_local);
  var l_local = 0.0;
  for (var sp = lid; sp < p.n_splits; sp += WG) {
    let at = base + sp * stride;
    l_local += partials[at + 1u] * exp(partials[at] - m);
  }
  let l = reduce_sum(lid, l_local);

  // Splits slice, slice + slices, .. in batches of BATCH, each batch's loads issued before any is used.
  var a = 0.0;
  if (slice < slices) {
    for (var sp0 = slice; sp0 < p.n_splits; sp0 += BATCH * slices) {
      if (sp0 != slice) {
        load_batch(&ms, &xs, base, stride, sp0, slices, d);
      }
      for (var b = 0u; b < BATCH; b++) {
        if (sp0 + b * slices < p.n_splits) {
          a += xs[b] * exp(ms[b] - m);
        }
      }
    }
  }
  acc_part[lid] = a;
  workgroupBarrier();
  if (lid < hd) {
    var total = 0.0;
    for (var s = 0u; s < slices; s++) {
      total += acc_part[s * hd + lid];
    }
    out[((i / p.group) * p.n_heads + h) * hd + lid] = total / l;
  }
}
