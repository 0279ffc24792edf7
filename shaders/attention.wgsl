// Causal GQA attention over one layer's KV cache, tiled like flash-attention, for prefill and decode.
// Query rows of one KV head: row i is query head kv_head * group + i % group at token i / group, so the
// query heads of a GQA group read each K/V row once. A workgroup takes a block of `rows_per_block` rows
// and one split (a chunk of `chunk` key positions) of the keys the block sees, walks it in tiles of
// `tile_keys` keys staged in workgroup memory with coalesced loads, and keeps an online softmax per row.
// n_splits == 1: the normalised output goes to `out`; n_splits > 1 (flash-decoding): each split writes
// its partial (max, sum, unnormalised weighted V) to `partials`, and attention_combine.wgsl merges them.
// Token t (position pos0 + t) sees keys lo(t) ..= pos0 + t, lo(t) = max(0, pos0 + t + 1 - window), or 0
// when window == 0.
// The cache holds f32 bits, or (KV_F16) pairs of halves packed by pack2x16float; head_dim is then even.

struct Params {
  n_heads: u32,
  group: u32, // n_heads / n_kv_heads
  head_dim: u32, // rows_per_block * head_dim <= Q_TILE
  n_tokens: u32,
  pos0: u32,
  max_seq: u32,
  window: u32, // 0: none
  rows_per_block: u32, // <= MAX_ROWS
  tile_keys: u32, // tile_keys * (head_dim + 1) <= KV_TILE, rows_per_block * tile_keys <= S_TILE
  n_splits: u32,
  chunk: u32, // keys per split
  scale: f32, // 1 / sqrt(head_dim)
}

// Set by src/gpu/kernels/attention.ts (attentionTiling).
override KV_F16: bool;
override Q_TILE: u32;
override KV_TILE: u32;
override S_TILE: u32;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>; // (n_tokens, n_heads, head_dim)
@group(0) @binding(2) var<storage, read> k_cache: array<u32>; // (n_kv_heads, max_seq, head_dim) f32 or packed f16
@group(0) @binding(3) var<storage, read> v_cache: array<u32>; // (n_kv_heads, max_seq, head_dim) f32 or packed f16
@group(0) @binding(4) var<storage, read_write> out: array<f32>; // (n_tokens, n_heads * head_dim)
@group(0) @binding(5) var<storage, read_write> partials: array<f32>; // (n_kv_heads, group * n_tokens, n_splits, 2 + head_dim): max, sum, acc

// WG, MAX_ROWS (rows per block), MAX_ACC (accumulators per invocation: Q_TILE <= MAX_ACC * WG): declared from
// src/gpu/shader-constants.ts (ATTENTION).
const NEG_BIG: f32 = -3.0e38; // a masked score

var<workgroup> qs: array<f32, Q_TILE>; // (rows, head_dim) the block's queries, times scale
var<workgroup> kv: array<f32, KV_TILE>; // (tile_keys, head_dim + 1) a tile of K, then of V (padded rows)
var<workgroup> s: array<f32, S_TILE>; // (rows, tile_keys) scores, then probabilities
var<workgroup> row_m: array<f32, MAX_ROWS>; // running max per row
var<workgroup> row_l: array<f32, MAX_ROWS>; // running sum of exp(score - max) per row
var<workgroup> row_c: array<f32, MAX_ROWS>; // this tile's rescale of the row's accumulators

fn key_lo(t: u32) -> u32 {
  let end = p.pos0 + t + 1u;
  return select(0u, end - min(end, p.window), p.window > 0u);
}

fn cache_word(value: bool, i: u32) -> u32 {
  if (value) {
    return v_cache[i];
  }
  return k_cache[i];
}

// kv[j * (head_dim + 1) + d] = cache element base + j * head_dim + d for j < nk.
fn load_tile(lid: u32, value: bool, base: u32, nk: u32) {
  let hd = p.head_dim;
  let stride = hd + 1u;
  if (KV_F16) {
    for (var w = lid; w < nk * hd / 2u; w += WG) {
      let e = 2u * w;
      let x = unpack2x16float(cache_word(value, base / 2u + w));
      let at = (e / hd) * stride + e % hd;
      kv[at] = x.x;
      kv[at + 1u] = x.y;
    }
  } else {
    for (var e = lid; e < nk * hd; e += WG) {
      kv[(e / hd) * stride + e % hd] = bitcast<f32>(cache_word(value, base + e));
    }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let split = wid.x;
  let row0 = wid.y * p.rows_per_block;
  let kv_head = wid.z;
  let hd = p.head_dim;
  let stride = hd + 1u;
  let rows_total = p.group * p.n_tokens;
  let n_rows = min(p.rows_per_block, rows_total - row0);
  let bk = p.tile_keys;

  for (var e = lid; e < n_rows * hd; e += WG) {
    let i = row0 + e / hd;
    let h = kv_head * p.group + i % p.group;
    qs[e] = q[((i / p.group) * p.n_heads + h) * hd + e % hd] * p.scale;
  }
  if (lid < n_rows) {
    row_m[lid] = NEG_BIG;
    row_l[lid] = 0.0;
  }

  // The block's keys run from its first token's lo to its last token's position; this split's share.
  let k_begin = key_lo(row0 / p.group) + split * p.chunk;
  let k_end = min(p.pos0 + (row0 + n_rows - 1u) / p.group + 1u, k_begin + p.chunk);
  let kv_base = kv_head * p.max_seq * hd;
  let n_out = n_rows * hd;
  var acc: array<f32, MAX_ACC>;
  for (var k0 = k_begin; k0 < k_end; k0 += bk) {
    let nk = min(bk, k_end - k0);
    workgroupBarrier(); // the last tile's V has been read (and qs, row_* are written)
    load_tile(lid, false, kv_base + k0 * hd, nk);
    workgroupBarrier();
    for (var e = lid; e < n_rows * bk; e += WG) {
      let r = e / bk;
      let j = e % bk;
      let t = (row0 + r) / p.group;
      let key = k0 + j;
      var score = NEG_BIG;
      if (j < nk && key >= key_lo(t) && key <= p.pos0 + t) {
        var dot = 0.0;
        for (var d = 0u; d < hd; d++) {
          dot += qs[r * hd + d] * kv[j * stride + d];
        }
        score = dot;
      }
      s[e] = score;
    }
    workgroupBarrier();
    load_tile(lid, true, kv_base + k0 * hd, nk); // V, while one invocation per row updates its softmax
    if (lid < n_rows) {
      let m_old = row_m[lid];
      var m_new = m_old;
      for (var j = 0u; j < nk; j++) {
        m_new = max(m_new, s[lid * bk + j]);
      }
      var sum = 0.0;
      for (var j = 0u; j < nk; j++) {
        let x = s[lid * bk + j];
        let pj = select(exp(x - m_new), 0.0, x == NEG_BIG);
        s[lid * bk + j] = pj;
        sum += pj;
      }
      let c = exp(m_old - m_new);
      row_c[lid] = c;
      row_m[lid] = m_new;
      row_l[lid] = row_l[lid] * c + sum;
    }
    workgroupBarrier();
    for (var a = 0u; a < MAX_ACC; a++) {
      let e = lid + a * WG;
      if (e < n_out) {
        let r = e / hd;
        let d = e % hd;
        var x = acc[a] * row_c[r];
        for (var j = 0u; j < nk; j++) {
          x += s[r * bk + j] * kv[j * stride + d];
        }
        acc[a] = x;
      }
    }
  }
  workgroupBarrier(); // row_m / row_l are final (also when this split saw no keys)

  for (var a = 0u; a < MAX_ACC; a++) {
    let e = lid + a * WG;
    if (e < n_out) {
      let r = e / hd;
      let d = e % hd;
      let i = row0 + r;
      if (p.n_splits == 1u) {
        let h = kv_head * p.group + i % p.group;
        out[((i / p.group) * p.n_heads + h) * hd + d] = acc[a] / row_l[r];
      } else {
        let at = ((kv_head * rows_total + i) * p.n_splits + split) * (2u + hd);
        partials[at + 2u + d] = acc[a];
        if (d == 0u) {
          partials[at] = row_m[r];
          partials[at + 1u] = row_l[r];
        }
      }
    }
  }
}
