// Decode attention (one query token) as flash-decoding, for the query heads of one GQA group at once.
// A workgroup takes (split, kv_head): the `chunk` keys lo + split * chunk .. of the window lo ..= pos0
// (lo = max(0, pos0 + 1 - window), or 0 when window == 0), for all `group` query heads of the KV head,
// reading each K and V row once with vec4<u32> loads (4 f32 or 8 packed halves per 16 bytes):
//   scores: LANES invocations per key (PASS_KEYS keys in flight), each a strided share of the row, for
//           every group row; the lanes' partial dots are summed in a fixed order in workgroup memory;
//   softmax: max and sum per row over the chunk's scores by SLICE invocations per row;
//   V: invocation = (key slice, vec4 of the row; its first V_PRE rows loaded before the scores, in flight
//      with K): each accumulates p * V over its slice's keys for every
//      row (coalesced across the head dimension), then the slices are summed in a fixed order.
// n_splits == 1: the normalised output goes to `out`; else each split writes (max, sum, acc) to
// `partials` for attention_combine.wgsl, in the layout of attention.wgsl with n_tokens == 1.
// The summation order depends only on the params (not on the device's limits).
// Needs: group <= MAX_GROUP, group * head_dim <= 4 * Q_VEC, group * chunk <= S_MAX, chunk a multiple of
// PASS_KEYS, head_dim a multiple of 4 (f32) or 8 (f16), head_dim / (4 or 8) <= WG (attention.ts checks).

struct Params {
  n_heads: u32,
  group: u32, // n_heads / n_kv_heads
  head_dim: u32,
  pos0: u32, // position of the query token
  max_seq: u32,
  window: u32, // 0: none
  n_splits: u32,
  chunk: u32, // keys per split
  scale: f32, // 1 / sqrt(head_dim)
}

override KV_F16: bool;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>; // (n_heads, head_dim)
@group(0) @binding(2) var<storage, read> k_cache: array<vec4<u32>>; // (n_kv_heads, max_seq, head_dim) f32 or packed f16
@group(0) @binding(3) var<storage, read> v_cache: array<vec4<u32>>; // (n_kv_heads, max_seq, head_dim) f32 or packed f16
@group(0) @binding(4) var<storage, read_write> out: array<f32>; // (n_heads * head_dim)
@group(0) @binding(5) var<storage, read_write> partials: array<f32>; // (n_kv_heads, group, n_splits, 2 + head_dim): max, sum, acc

// WG, MAX_GROUP, PASS_KEYS, Q_VEC, S_MAX: declared from src/gpu/shader-constants.ts (ATTENTION_DECODE).
const LANES: u32 = WG / PASS_KEYS; // invocations per key in the score stage
const SLICE: u32 = WG / MAX_GROUP; // invocations per row in the softmax reductions
const NEG_BIG: f32 = -3.0e38;
const V_PRE: u32 = 4u; // V rows per invocation loaded before the score stage

// (group, head_dim / 4) the queries times scale; after the score stage (m, l, _, _) of row r at [r].
var<workgroup> qs: array<vec4<f32>, Q_VEC>;
// Reductions: (group, WG) lane dots; (WG) row partials; (WG, 8) V slices of one row.
var<workgroup> red: array<f32, 2048>;
var<workgroup> s: array<f32, S_MAX>; // (group, chunk) scores, then exp(score - max)

// Elements 0..3 and 4..7 of a cache vec4 (f16: 8 halves; f32: 4 floats, the second half unused).
fn lo4(x: vec4<u32>) -> vec4<f32> {
  if (KV_F16) {
    return vec4<f32>(unpack2x16float(x.x), unpack2x16float(x.y));
  }
  return bitcast<vec4<f32>>(x);
}

fn hi4(x: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(x.z), unpack2x16float(x.w));
}

// acc[2r], acc[2r + 1] += p[r][j] * (elements of x), for the rows r < g.
fn add_pv(acc: ptr<function, array<vec4<f32>, 16>>, x: vec4<u32>, j: u32, g: u32) {
  let a = lo4(x);
  for (var r = 0u; r < MAX_GROUP; r++) {
    if (r < g) {
      let pj = s[r * p.chunk + j];
      (*acc)[2u * r] += pj * a;
      if (KV_F16) {
        (*acc)[2u * r + 1u] += pj * hi4(x);
      }
    }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let split = wid.x;
  let kv_head = wid.y;
  let hd = p.head_dim;
  let g = p.group;
  let qv = hd / 4u; // vec4s of a query row
  let per = select(4u, 8u, KV_F16); // elements per cache vec4
  let rv = hd / per; // vec4s of a cache row

  for (var i = lid; i < g * qv; i += WG) {
    let at = (kv_head * g + i / qv) * hd + (i % qv) * 4u;
    qs[i] = vec4<f32>(q[at], q[at + 1u], q[at + 2u], q[at + 3u]) * p.scale;
  }
  let end = p.pos0 + 1u;
  let lo = select(0u, end - min(end, p.window), p.window > 0u);
  let k_begin = lo + split * p.chunk;
  let nk = min(p.chunk, end - min(end, k_begin)); // keys of this split
  let row0 = (kv_head * p.max_seq + k_begin) * rv; // first vec4 of the split's first row
  workgroupBarrier();

  // This invocation's first V_PRE rows of the p * V stage, loaded now so that they are in flight with K.
  let n_slices = WG / rv;
  let slice = lid / rv;
  let v = lid % rv;
  var v_pre = array<vec4<u32>, V_PRE>();
  for (var i = 0u; i < V_PRE; i++) {
    let j = slice + i * n_slices;
    if (slice < n_slices && j < nk) {
      v_pre[i] = v_cache[row0 + j * rv + v];
    }
  }

  // Scores s[r * chunk + j] of key k_begin + j.
  let lane = lid % LANES;
  for (var k0 = 0u; k0 < nk; k0 += PASS_KEYS) {
    let j = k0 + lid / LANES;
    var dots = array<f32, MAX_GROUP>();
    if (j < nk) {
      for (var c = lane; c < rv; c += LANES) {
        let x = k_cache[row0 + j * rv + c];
        let a = lo4(x);
        for (var r = 0u; r < MAX_GROUP; r++) {
          if (r < g) {
            if (KV_F16) {
              dots[r] += dot(a, qs[r * qv + 2u * c]) + dot(hi4(x), qs[r * qv + 2u * c + 1u]);
            } else {
              dots[r] += dot(a, qs[r * qv + c]);
            }
          }
        }
      }
    }
    for (var r = 0u; r < MAX_GROUP; r++) {
      if (r < g) {
        red[r * WG + lid] = dots[r];
      }
    }
    workgroupBarrier();
    for (var i = lid; i < g * PASS_KEYS; i += WG) {
      let jj = k0 + i % PASS_KEYS;
      if (jj < nk) {
        let at = (i / PASS_KEYS) * WG + (i % PASS_KEYS) * LANES;
        s[(i / PASS_KEYS) * p.chunk + jj] = ((red[at] + red[at + 1u]) + red[at + 2u]) + red[at + 3u];
      }
    }
    workgroupBarrier();
  }

  // Softmax over the chunk: SLICE invocations per row, then one invocation per row sums their results.
  let sr = lid / SLICE;
  let st = lid % SLICE;
  var mx = NEG_BIG;
  if (sr < g) {
    for (var j = st; j < nk; j += SLICE) {
      mx = max(mx, s[sr * p.chunk + j]);
    }
  }
  red[lid] = mx;
  workgroupBarrier();
  if (lid < g) {
    var m = NEG_BIG;
    for (var i = 0u; i < SLICE; i++) {
      m = max(m, red[lid * SLICE + i]);
    }
    qs[lid] = vec4<f32>(m, 0.0, 0.0, 0.0);
  }
  workgroupBarrier();
  var sum = 0.0;
  if (sr < g) {
    let m = qs[sr].x;
    for (var j = st; j < nk; j += SLICE) {
      let e = exp(s[sr * p.chunk + j] - m);
      s[sr * p.chunk + j] = e;
      sum += e;
    }
  }
  red[lid] = sum;
  workgroupBarrier();
  if (lid < g) {
    var l = 0.0;
    for (var i = 0u; i < SLICE; i++) {
      l += red[lid * SLICE + i];
    }
    qs[lid].y = l;
  }
  workgroupBarrier();

  // p * V: invocation (slice, v) takes keys slice, slice + n_slices, .. of the chunk (the first V_PRE
  // of them prefetched).
  var acc = array<vec4<f32>, 16>(); // (MAX_GROUP, 2) elements 0..3 and 4..7 of the vec4
  if (slice < n_slices) {
    for (var i = 0u; i < V_PRE; i++) {
      let j = slice + i * n_slices;
      if (j < nk) {
        add_pv(&acc, v_pre[i], j, g);
      }
    }
    for (var j = slice + V_PRE * n_slices; j < nk; j += n_slices) {
      add_pv(&acc, v_cache[row0 + j * rv + v], j, g);
    }
  }
  for (var r = 0u; r < MAX_GROUP; r++) {
    if (r < g) {
      let b = lid * 8u;
      red[b] = acc[2u * r].x;
      red[b + 1u] = acc[2u * r].y;
      red[b + 2u] = acc[2u * r].z;
      red[b + 3u] = acc[2u * r].w;
      red[b + 4u] = acc[2u * r + 1u].x;
      red[b + 5u] = acc[2u * r + 1u].y;
      red[b + 6u] = acc[2u * r + 1u].z;
      red[b + 7u] = acc[2u * r + 1u].w;
      workgroupBarrier();
      let m = qs[r].x;
      let l = qs[r].y;
      let h = kv_head * g + r;
      for (var d = lid; d < hd; d += WG) {
        var a = 0.0;
        for (var sl = 0u; sl < n_slices; sl++) {
          a += red[(sl * rv + d / per) * 8u + d % per];
        }
        if (p.n_splits == 1u) {
          out[h * hd + d] = a / l;
        } else {
          let at = (h * p.n_splits + split) * (2u + hd);
          partials[at + 2u + d] = a;
          if (d == 0u) {
            partials[at] = m;
            partials[at + 1u] = l;
          }
        }
      }
      workgroupBarrier();
    }
  }
}
