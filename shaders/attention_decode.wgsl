// Decode attention (one query token) as flash-decoding, for the query heads of one GQA group at once.
// A workgroup takes (split, kv_head): the `chunk` keys lo + split * chunk .. of the window lo ..= pos0
// (lo = max(0, pos0 + 1 - window), or 0 when window == 0), for all `group` query heads of the KV head,
// in rounds of R = WG / lanes keys with an online softmax across rounds. A round is built to keep the
// memory system busy: every invocation issues all of its 16-byte loads of the round's K and V rows
// (up to LOADS of each, 4 f32 or 8 packed halves per vec4<u32>) back to back before it consumes any, so one
// round has the whole R x head_dim block of K and of V in flight at once (the next round's K is issued as
// soon as this round's dots are done, so it is in flight during the softmax and p * V); then
//   scores: `lanes` invocations per key, each a strided share of the row (lane, lane + lanes, ..), dotted
//           with the queries of every group row (broadcast from workgroup memory); partial dots to `kd`;
//   softmax: SEG invocations per row each take keys seg, seg + SEG, .. of the round (summing the lanes'
//            partials in lane order), a max per segment, the row's new running max from its SEG maxima,
//            exp(score - max) written back over the key's first partial, and a running sum per segment;
//   V: invocation (slice, v) takes vec4 v of the keys slice, slice + n_slices, .. (n_slices = WG / rv) and
//      accumulates p * V for every row in registers (rescaled by exp(m_old - m_new) each round).
// After the last round the slices' accumulators are summed in slice order, one row at a time.
// n_splits == 1: the normalised output goes to `out`; else each split writes (max, sum, acc) to
// `partials` for attention_combine.wgsl, in the layout of attention.wgsl with n_tokens == 1.
// The summation order depends only on the params (not on the device's limits).
// Needs (attention.ts decodePlan checks): group <= ROWS <= MAX_GROUP, group * head_dim <= 4 * Q_VEC,
// head_dim a multiple of 4 (f32) or 8 (f16), rv = head_dim / (4 or 8) <= WG, lanes a power of two with
// ceil(rv / lanes) <= LOADS, ceil(R / n_slices) <= LOADS.

struct Params {
  n_heads: u32,
  group: u32, // n_heads / n_kv_heads
  head_dim: u32,
  pos0: u32, // position of the query token
  max_seq: u32,
  window: u32, // 0: none
  n_splits: u32,
  chunk: u32, // keys per split
  lanes: u32, // invocations per key in the score stage (a power of two)
  scale: f32, // softmax scale of q . k
}

override KV_F16: bool;
// Most group rows this pipeline handles (4 or MAX_GROUP): its loops and accumulators are unrolled to it.
override ROWS: u32;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>; // (n_heads, head_dim)
@group(0) @binding(2) var<storage, read> k_cache: array<vec4<u32>>; // (n_kv_heads, max_seq, head_dim) f32 or packed f16
@group(0) @binding(3) var<storage, read> v_cache: array<vec4<u32>>; // (n_kv_heads, max_seq, head_dim) f32 or packed f16
@group(0) @binding(4) var<storage, read_write> out: array<f32>; // (n_heads * head_dim)
@group(0) @binding(5) var<storage, read_write> partials: array<f32>; // (n_kv_heads, group, n_splits, 2 + head_dim): max, sum, acc

// WG, MAX_GROUP, Q_VEC, LOADS: declared from src/gpu/shader-constants.ts (ATTENTION_DECODE).
const SEG: u32 = WG / MAX_GROUP; // invocations per row in the softmax stage
const NEG_BIG: f32 = -3.0e38;

var<workgroup> qs: array<vec4<f32>, Q_VEC>; // (group, head_dim / 4) the queries times scale
// (group, R, lanes) partial dots of the round; then p of (row, key) at [row * WG + key * lanes];
// after the last round, one row of the slices' accumulators (n_slices, head_dim).
var<workgroup> kd: array<f32, MAX_GROUP * WG>;
var<workgroup> seg_red: array<vec4<f32>, WG / 4u>; // (group, SEG) segment maxima, then segment sums
var<workgroup> row_m: array<f32, MAX_GROUP>; // running max per row
var<workgroup> row_scale: array<f32, MAX_GROUP>; // exp(m_old - m_new) of the round per row

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

// Max, then sum, of the SEG segment values of `row` in seg_red, read as vec4s (a fixed order).
fn seg_max(row: u32) -> f32 {
  var m = vec4<f32>(NEG_BIG);
  for (var i = 0u; i < SEG / 4u; i++) {
    m = max(m, seg_red[row * (SEG / 4u) + i]);
  }
  return max(max(m.x, m.y), max(m.z, m.w));
}

fn seg_sum(row: u32) -> f32 {
  var s = vec4<f32>(0.0);
  for (var i = 0u; i < SEG / 4u; i++) {
    s += seg_red[row * (SEG / 4u) + i];
  }
  return (s.x + s.y) + (s.z + s.w);
}

// Words lane, lane + lanes, .. of key min(key, nr - 1) of the rows from `base` (keys past nr: in bounds, unused).
fn load_k(kx: ptr<function, array<vec4<u32>, LOADS>>, base: u32, nr: u32, key: u32, lane: u32, rv: u32, lanes: u32) {
  let at = base + min(key, nr - 1u) * rv;
  for (var i = 0u; i < LOADS; i++) {
    let c = lane + i * lanes;
    if (c < rv) {
      (*kx)[i] = k_cache[at + c];
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
  let lanes = p.lanes;
  let round_keys = WG / lanes; // R

  let end = p.pos0 + 1u;
  let lo = select(0u, end - min(end, p.window), p.window > 0u);
  let k_begin = lo + split * p.chunk;
  let nk = min(p.chunk, end - min(end, k_begin)); // keys of this split
  let row0 = (kv_head * p.max_seq + k_begin) * rv; // first vec4 of the split's first row

  // Score stage: invocation (key, lane). V stage: invocation (slice, v). Softmax: (row sr, segment st).
  let key = lid / lanes;
  let lane = lid % lanes;
  let n_slices = WG / rv;
  let slice = lid / rv;
  let v = lid % rv;
  let sr = lid / SEG;
  let st = lid % SEG;

  var m_run = NEG_BIG; // row sr's running max (invocations with sr < g)
  var l_run = 0.0; // sum of exp(score - m_run) over this segment's keys so far
  var acc = array<vec4<f32>, 2 * MAX_GROUP>(); // (row, 2): elements 0..3 and 4..7 of vec4 v of the output
  var first = true;
  // The round's K words of (key, lane); the first round's issued here, each next one during the round before.
  var kx = array<vec4<u32>, LOADS>();
  if (nk > 0u) {
    load_k(&kx, row0, min(round_keys, nk), key, lane, rv, lanes);
  }
  for (var kb = 0u; kb < nk; kb += round_keys) {
    let nr = min(round_keys, nk - kb); // keys of this round
    let base = row0 + kb * rv;

    // Every V load of the round before any is used (keys past nr read key nr - 1: in bounds, unused).
    var vx = array<vec4<u32>, LOADS>();
    if (slice < n_slices) {
      for (var i = 0u; i < LOADS; i++) {
        let j = slice + i * n_slices;
        if (j < round_keys) {
          vx[i] = v_cache[base + min(j, nr - 1u) * rv + v];
        }
      }
    }
    if (first) {
      for (var i = lid; i < g * qv; i += WG) {
        let at = (kv_head * g + i / qv) * hd + (i % qv) * 4u;
        qs[i] = vec4<f32>(q[at], q[at + 1u], q[at + 2u], q[at + 3u]) * p.scale;
      }
      workgroupBarrier();
      first = false;
    }

    // Partial dots of (key, lane) for every row.
    for (var r = 0u; r < ROWS; r++) {
      if (r < g) {
        var d = 0.0;
        for (var i = 0u; i < LOADS; i++) {
          let c = lane + i * lanes;
          if (c < rv) {
            if (KV_F16) {
              d += dot(lo4(kx[i]), qs[r * qv + 2u * c]) + dot(hi4(kx[i]), qs[r * qv + 2u * c + 1u]);
            } else {
              d += dot(lo4(kx[i]), qs[r * qv + c]);
            }
          }
        }
        kd[r * WG + lid] = d;
      }
    }
    // The next round's K, in flight during this round's softmax and p * V.
    let kb_next = kb + round_keys;
    if (kb_next < nk) {
      load_k(&kx, row0 + kb_next * rv, min(round_keys, nk - kb_next), key, lane, rv, lanes);
    }
    workgroupBarrier();

    // Softmax: segment (sr, st) takes keys st, st + SEG, .. < nr (at most R / SEG <= LOADS of them).
    var sc = array<f32, LOADS>();
    var mx = NEG_BIG;
    if (sr < g) {
      for (var i = 0u; i < LOADS; i++) {
        let j = st + i * SEG;
        if (j < nr) {
          var s = 0.0;
          for (var l = 0u; l < lanes; l++) {
            s += kd[sr * WG + j * lanes + l];
          }
          sc[i] = s;
          mx = max(mx, s);
        }
      }
    }
    seg_red[lid / 4u][lid % 4u] = mx;
    workgroupBarrier();
    if (sr < g) {
      let m_new = max(m_run, seg_max(sr));
      let rescale = exp(m_run - m_new);
      var sum = 0.0;
      for (var i = 0u; i < LOADS; i++) {
        let j = st + i * SEG;
        if (j < nr) {
          let e = exp(sc[i] - m_new);
          kd[sr * WG + j * lanes] = e;
          sum += e;
        }
      }
      l_run = l_run * rescale + sum;
      m_run = m_new;
      if (st == 0u) {
        row_scale[sr] = rescale;
        row_m[sr] = m_new;
      }
    }
    workgroupBarrier();

    // p * V: invocation (slice, v) over keys slice, slice + n_slices, .. < nr of the round.
    if (slice < n_slices) {
      for (var r = 0u; r < ROWS; r++) {
        if (r < g) {
          let f = row_scale[r];
          acc[2u * r] *= f;
          if (KV_F16) {
            acc[2u * r + 1u] *= f;
          }
        }
      }
      for (var i = 0u; i < LOADS; i++) {
        let j = slice + i * n_slices;
        if (j < nr) {
          let a = lo4(vx[i]);
          let b = hi4(vx[i]);
          for (var r = 0u; r < ROWS; r++) {
            if (r < g) {
              let pj = kd[r * WG + j * lanes];
              acc[2u * r] += pj * a;
              if (KV_F16) {
                acc[2u * r + 1u] += pj * b;
              }
            }
          }
        }
      }
    }
    workgroupBarrier();
  }

  // Row sums from the segments' running sums, then each row's accumulators summed over the slices.
  seg_red[lid / 4u][lid % 4u] = select(0.0, l_run, sr < g);
  workgroupBarrier();
  for (var r = 0u; r < ROWS; r++) {
    if (r < g) {
      if (slice < n_slices) {
        let b = slice * hd + v * per;
        for (var e = 0u; e < 4u; e++) {
          kd[b + e] = acc[2u * r][e];
          if (KV_F16) {
            kd[b + 4u + e] = acc[2u * r + 1u][e];
          }
        }
      }
      workgroupBarrier();
      let h = kv_head * g + r;
      for (var d = lid; d < hd; d += WG) {
        var a = 0.0;
        for (var sl = 0u; sl < n_slices; sl++) {
          a += kd[sl * hd + d];
        }
        let l = seg_sum(r);
        if (p.n_splits == 1u) {
          out[h * hd + d] = a / l;
        } else {
          let at = (h * p.n_splits + split) * (2u + hd);
          partials[at + 2u + d] = a;
          if (d == 0u) {
            partials[at] = row_m[r];
            partials[at + 1u] = l;
          }
        }
      }
      workgroupBarrier();
    }
  }
}
