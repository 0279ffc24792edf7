// Decode attention (one query token) as flash-decoding, for the query heads of one GQA group at once.
// A workgroup takes (split, kv_head): the `chunk` keys lo + split * chunk .. of the window lo ..= pos0
// (lo = max(0, pos0 + 1 - window), or 0 when window == 0), for all `group` query heads of the KV head,
// in rounds of R = WG / lanes keys with an online softmax across rounds. Built to keep the memory system
// busy with few registers (several workgroups per SM hide each other's latency):
//   - no private array indexed at run time (a driver that does not fully unroll such loops puts them in
//     local memory, where each load waits for the one before): the K words (K_LOADS) and V units
//     (V_LOADS) of a round are named `let`/`var` values issued back to back before any is used, the
//     accumulators are fields of a struct, every index into them a constant;
//   - K is read in 16-byte words (4 f32 or 8 packed halves), at most K_LOADS per invocation per round;
//     V in 8-byte units (4 halves or 2 floats: array<vec2<u32>>), so an invocation accumulates 4 (f16)
//     or 2 (f32) output elements per row in ROWS vec4 accumulators;
//   - the next round's K is issued right after this round's dots, so it is in flight during the softmax
//     and p * V;
//   - the softmax writes each key's summed score back over its first lane partial (no private score array);
//   - after the last round the slices' accumulators are summed several rows per barrier pair (as many rows
//     of n_slices x head_dim as fit `kd`).
// Round structure: score stage (key, lane) over words lane, lane + lanes, .. (< K_LOADS of them), dotted
// with the queries of every group row (broadcast from workgroup memory); softmax by SEG invocations per row
// with an online max across rounds; V stage (slice, unit) over keys slice, slice + n_slices, ..
// (< V_LOADS of them), rescaled by exp(m_old - m_new) each round.
// n_splits == 1: the normalised output goes to `out`; else each split writes (max, sum, acc) to
// `partials` for attention_combine.wgsl, in the layout of attention.wgsl with n_tokens == 1.
// The summation order depends only on the params (not on the device's limits).
// Needs (attention.ts decodePlan checks): group <= ROWS <= MAX_GROUP, group * head_dim <= 4 * Q_VEC,
// head_dim a multiple of 4 (f32) or 8 (f16), lanes a power of two with ceil(rv / lanes) <= K_LOADS,
// ceil(R / n_slices) <= V_LOADS (R = WG / lanes, n_slices = WG / units), units = head_dim * bytes / 8 <= WG.

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
// Most group rows this pipeline handles (4 or MAX_GROUP): accumulators past it are compiled out.
override ROWS: u32;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>; // (n_heads, head_dim)
@group(0) @binding(2) var<storage, read> k_cache: array<vec4<u32>>; // (n_kv_heads, max_seq, head_dim) f32 or packed f16
@group(0) @binding(3) var<storage, read> v_cache: array<vec2<u32>>; // (n_kv_heads, max_seq, head_dim) f32 or packed f16, 8-byte units
@group(0) @binding(4) var<storage, read_write> out: array<f32>; // (n_heads * head_dim)
@group(0) @binding(5) var<storage, read_write> partials: array<f32>; // (n_kv_heads, group, n_splits, 2 + head_dim): max, sum, acc

// WG, MAX_GROUP, Q_VEC, K_LOADS, V_LOADS: declared from src/gpu/shader-constants.ts (ATTENTION_DECODE).
// The rounds below are written out for 4 K words (k0..k3) and 8 V units (v0..v7) per invocation.
const_assert K_LOADS == 4u && V_LOADS == 8u;
const SEG: u32 = WG / MAX_GROUP; // invocations per row in the softmax stage
const NEG_BIG: f32 = -3.0e38;

var<workgroup> qs: array<vec4<f32>, Q_VEC>; // (group, head_dim / 4) the queries times scale
// (group, R, lanes) partial dots of the round; then the score, then p, of (row, key) at [row * WG + key * lanes];
// after the last round, rows of the slices' accumulators (rows, n_slices, head_dim).
var<workgroup> kd: array<f32, MAX_GROUP * WG>;
var<workgroup> seg_red: array<vec4<f32>, WG / 4u>; // (group, SEG) segment maxima, then segment sums
var<workgroup> row_m: array<f32, MAX_GROUP>; // running max per row
var<workgroup> row_scale: array<f32, MAX_GROUP>; // exp(m_old - m_new) of the round per row

// Output elements of the invocation's V unit, one vec4 per row (f32: .xy used).
struct Acc {
  r0: vec4<f32>,
  r1: vec4<f32>,
  r2: vec4<f32>,
  r3: vec4<f32>,
  r4: vec4<f32>,
  r5: vec4<f32>,
  r6: vec4<f32>,
  r7: vec4<f32>,
}

fn lo4(x: vec4<u32>) -> vec4<f32> {
  if (KV_F16) {
    return vec4<f32>(unpack2x16float(x.x), unpack2x16float(x.y));
  }
  return bitcast<vec4<f32>>(x);
}

fn hi4(x: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(x.z), unpack2x16float(x.w));
}

// An 8-byte V unit as 4 halves (f16) or 2 floats (f32, then zw = 0).
fn unit4(x: vec2<u32>) -> vec4<f32> {
  if (KV_F16) {
    return vec4<f32>(unpack2x16float(x.x), unpack2x16float(x.y));
  }
  return vec4<f32>(bitcast<vec2<f32>>(x), 0.0, 0.0);
}

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

// Word c of key min(key, nr - 1) of the rows from `base` (0 past the row: c >= rv).
fn k_word(base: u32, nr: u32, key: u32, c: u32, rv: u32) -> vec4<u32> {
  if (c < rv) {
    return k_cache[base + min(key, nr - 1u) * rv + c];
  }
  return vec4<u32>();
}

// Unit u of key min(j, nr - 1) of the rows from `base` (units); nothing for j >= R or an idle invocation.
fn v_unit(base: u32, nr: u32, j: u32, u: u32, uv: u32, live: bool) -> vec2<u32> {
  if (live) {
    return v_cache[base + min(j, nr - 1u) * uv + u];
  }
  return vec2<u32>();
}

// q . (word x = word c of the row) for group row r.
fn dot_word(x: vec4<u32>, r: u32, c: u32, qv: u32) -> f32 {
  if (KV_F16) {
    return dot(lo4(x), qs[r * qv + 2u * c]) + dot(hi4(x), qs[r * qv + 2u * c + 1u]);
  }
  return dot(lo4(x), qs[r * qv + c]);
}

// acc += p(row, key at) * unit for every row the pipeline has (rows past the group: unused).
fn accumulate(acc: ptr<function, Acc>, x: vec2<u32>, at: u32) {
  let a = unit4(x);
  (*acc).r0 += kd[at] * a;
  if (ROWS > 1u) { (*acc).r1 += kd[WG + at] * a; }
  if (ROWS > 2u) { (*acc).r2 += kd[2u * WG + at] * a; }
  if (ROWS > 3u) { (*acc).r3 += kd[3u * WG + at] * a; }
  if (ROWS > 4u) { (*acc).r4 += kd[4u * WG + at] * a; }
  if (ROWS > 5u) { (*acc).r5 += kd[5u * WG + at] * a; }
  if (ROWS > 6u) { (*acc).r6 += kd[6u * WG + at] * a; }
  if (ROWS > 7u) { (*acc).r7 += kd[7u * WG + at] * a; }
}

fn rescale(acc: ptr<function, Acc>) {
  (*acc).r0 *= row_scale[0];
  if (ROWS > 1u) { (*acc).r1 *= row_scale[1]; }
  if (ROWS > 2u) { (*acc).r2 *= row_scale[2]; }
  if (ROWS > 3u) { (*acc).r3 *= row_scale[3]; }
  if (ROWS > 4u) { (*acc).r4 *= row_scale[4]; }
  if (ROWS > 5u) { (*acc).r5 *= row_scale[5]; }
  if (ROWS > 6u) { (*acc).r6 *= row_scale[6]; }
  if (ROWS > 7u) { (*acc).r7 *= row_scale[7]; }
}

fn acc_row(acc: Acc, r: u32) -> vec4<f32> {
  switch (r) {
    case 0u: { return acc.r0; }
    case 1u: { return acc.r1; }
    case 2u: { return acc.r2; }
    case 3u: { return acc.r3; }
    case 4u: { return acc.r4; }
    case 5u: { return acc.r5; }
    case 6u: { return acc.r6; }
    default: { return acc.r7; }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let split = wid.x;
  let kv_head = wid.y;
  let hd = p.head_dim;
  let g = p.group;
  let qv = hd / 4u; // vec4s of a query row
  let per_unit = select(2u, 4u, KV_F16); // elements per 8-byte V unit
  let rv = hd / (2u * per_unit); // 16-byte K words of a row
  let uv = hd / per_unit; // 8-byte V units of a row
  let lanes = p.lanes;
  let round_keys = WG / lanes; // R

  let end = p.pos0 + 1u;
  let lo = select(0u, end - min(end, p.window), p.window > 0u);
  let k_begin = lo + split * p.chunk;
  let nk = min(p.chunk, end - min(end, k_begin)); // keys of this split
  let first_row = kv_head * p.max_seq + k_begin;

  // Score stage: invocation (key, lane). V stage: invocation (slice, u). Softmax: (row sr, segment st).
  let key = lid / lanes;
  let lane = lid % lanes;
  let n_slices = WG / uv;
  let slice = lid / uv;
  let u = lid % uv;
  let sr = lid / SEG;
  let st = lid % SEG;
  let v_live = slice < n_slices;

  var m_run = NEG_BIG;
  var l_run = 0.0;
  var acc = Acc();
  // The round's K words of (key, lane); the first round's issued here, each next one during the round before.
  let nr0 = min(round_keys, nk);
  var k0 = vec4<u32>();
  var k1 = vec4<u32>();
  var k2 = vec4<u32>();
  var k3 = vec4<u32>();
  if (nk > 0u) {
    let base = first_row * rv;
    k0 = k_word(base, nr0, key, lane, rv);
    k1 = k_word(base, nr0, key, lane + lanes, rv);
    k2 = k_word(base, nr0, key, lane + 2u * lanes, rv);
    k3 = k_word(base, nr0, key, lane + 3u * lanes, rv);
  }
  for (var i = lid; i < g * qv; i += WG) {
    let at = (kv_head * g + i / qv) * hd + (i % qv) * 4u;
    qs[i] = vec4<f32>(q[at], q[at + 1u], q[at + 2u], q[at + 3u]) * p.scale;
  }
  workgroupBarrier();

  for (var kb = 0u; kb < nk; kb += round_keys) {
    let nr = min(round_keys, nk - kb); // keys of this round
    // Every V unit of the round before any is used (keys past nr read key nr - 1: in bounds, unused).
    let vb = (first_row + kb) * uv;
    let j0 = slice;
    let j1 = slice + n_slices;
    let j2 = slice + 2u * n_slices;
    let j3 = slice + 3u * n_slices;
    let j4 = slice + 4u * n_slices;
    let j5 = slice + 5u * n_slices;
    let j6 = slice + 6u * n_slices;
    let j7 = slice + 7u * n_slices;
    let v0 = v_unit(vb, nr, j0, u, uv, v_live && j0 < round_keys);
    let v1 = v_unit(vb, nr, j1, u, uv, v_live && j1 < round_keys);
    let v2 = v_unit(vb, nr, j2, u, uv, v_live && j2 < round_keys);
    let v3 = v_unit(vb, nr, j3, u, uv, v_live && j3 < round_keys);
    let v4 = v_unit(vb, nr, j4, u, uv, v_live && j4 < round_keys);
    let v5 = v_unit(vb, nr, j5, u, uv, v_live && j5 < round_keys);
    let v6 = v_unit(vb, nr, j6, u, uv, v_live && j6 < round_keys);
    let v7 = v_unit(vb, nr, j7, u, uv, v_live && j7 < round_keys);

    // Partial dots of (key, lane) for every row (words past the row are skipped).
    for (var r = 0u; r < ROWS; r++) {
      if (r < g) {
        var d = dot_word(k0, r, lane, qv);
        if (lane + lanes < rv) { d += dot_word(k1, r, lane + lanes, qv); }
        if (lane + 2u * lanes < rv) { d += dot_word(k2, r, lane + 2u * lanes, qv); }
        if (lane + 3u * lanes < rv) { d += dot_word(k3, r, lane + 3u * lanes, qv); }
        kd[r * WG + lid] = d;
      }
    }
    // The next round's K, in flight during this round's softmax and p * V.
    let kb_next = kb + round_keys;
    if (kb_next < nk) {
      let base = (first_row + kb_next) * rv;
      let nr_next = min(round_keys, nk - kb_next);
      k0 = k_word(base, nr_next, key, lane, rv);
      k1 = k_word(base, nr_next, key, lane + lanes, rv);
      k2 = k_word(base, nr_next, key, lane + 2u * lanes, rv);
      k3 = k_word(base, nr_next, key, lane + 3u * lanes, rv);
    }
    workgroupBarrier();

    // Softmax: segment (sr, st) takes keys st, st + SEG, .. < nr; each key's score (its lanes' partials
    // summed in lane order) is written over its first partial, then replaced by exp(score - max).
    var mx = NEG_BIG;
    if (sr < g) {
      for (var j = st; j < nr; j += SEG) {
        let at = sr * WG + j * lanes;
        var s = kd[at];
        for (var l = 1u; l < lanes; l++) {
          s += kd[at + l];
        }
        kd[at] = s;
        mx = max(mx, s);
      }
    }
    seg_red[lid / 4u][lid % 4u] = mx;
    workgroupBarrier();
    if (sr < g) {
      let m_new = max(m_run, seg_max(sr));
      let f = exp(m_run - m_new);
      var sum = 0.0;
      for (var j = st; j < nr; j += SEG) {
        let at = sr * WG + j * lanes;
        let e = exp(kd[at] - m_new);
        kd[at] = e;
        sum += e;
      }
      l_run = l_run * f + sum;
      m_run = m_new;
      if (st == 0u) {
        row_scale[sr] = f;
        row_m[sr] = m_new;
      }
    }
    workgroupBarrier();

    // p * V: invocation (slice, u) over keys j0, j1, .. < nr of the round.
    if (v_live) {
      rescale(&acc);
      if (j0 < nr) { accumulate(&acc, v0, j0 * lanes); }
      if (j1 < nr) { accumulate(&acc, v1, j1 * lanes); }
      if (j2 < nr) { accumulate(&acc, v2, j2 * lanes); }
      if (j3 < nr) { accumulate(&acc, v3, j3 * lanes); }
      if (j4 < nr) { accumulate(&acc, v4, j4 * lanes); }
      if (j5 < nr) { accumulate(&acc, v5, j5 * lanes); }
      if (j6 < nr) { accumulate(&acc, v6, j6 * lanes); }
      if (j7 < nr) { accumulate(&acc, v7, j7 * lanes); }
    }
    workgroupBarrier();
  }

  // Row sums from the segments' running sums; then, `rb` rows at a time, each row's accumulators summed
  // over the slices in slice order.
  seg_red[lid / 4u][lid % 4u] = select(0.0, l_run, sr < g);
  let row_floats = n_slices * hd;
  let rb = (MAX_GROUP * WG) / row_floats;
  for (var r0 = 0u; r0 < g; r0 += rb) {
    if (v_live) {
      for (var b = 0u; b < rb; b++) {
        let r = r0 + b;
        if (r < g) {
          let x = acc_row(acc, r);
          let at = b * row_floats + slice * hd + u * per_unit;
          kd[at] = x.x;
          kd[at + 1u] = x.y;
          if (KV_F16) {
            kd[at + 2u] = x.z;
            kd[at + 3u] = x.w;
          }
        }
      }
    }
    workgroupBarrier();
    for (var t = lid; t < rb * hd; t += WG) {
      let b = t / hd;
      let d = t % hd;
      let r = r0 + b;
      if (r < g) {
        var a = 0.0;
        for (var sl = 0u; sl < n_slices; sl++) {
          a += kd[b * row_floats + sl * hd + d];
        }
        let l = seg_sum(r);
        let h = kv_head * g + r;
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
    }
    workgroupBarrier();
  }
}
