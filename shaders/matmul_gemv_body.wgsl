// matmul_common.wgsl's product as a GEMV for decode (few tokens; one grid z per token). Included by
// matmul_gemv.wgsl (workgroup-memory reduction) and matmul_gemv_sg.wgsl (subgroup reduction), which
// define `finish`. A workgroup of WG invocations holds WG / LANES groups; a group's LANES invocations
// share ROWS consecutive rows: each reads x for 8 columns once (two vec4<f32>) and the same 8 columns of
// each of its ROWS rows (one vec4<u32> = 8 BF16 per row), striding over k by LANES; `finish` then adds the
// group's partial sums per row. Consecutive lanes read consecutive 16 bytes of a row (coalesced).
// Per-row result depends on (WG, LANES, reduction) only, never on ROWS, the tile or the offsets.
// NORM folds the RMSNorm before the matmul into it (one dispatch instead of two per normed projection):
//   xin[t, k] = x[t, k] * norm_w[k], and the finished sum is scaled by 1 / sqrt(mean_k x[t, k]^2 + eps),
// the sum of squares gathered as the row groups read x and reduced beside the row sums (in `finish`, as
// its row ROWS). The same function as rmsnorm.wgsl then this GEMV, summed in another order.
// #include matmul_common

// Set by src/gpu/kernels/matmul.ts (GemvVariant); MAX_ROWS is declared from src/gpu/shader-constants.ts (GEMV).
override WG: u32; // invocations per workgroup: a power of two, <= 256
override LANES: u32; // invocations per row group: a power of two dividing WG
override ROWS: u32; // rows per group, 1..MAX_ROWS
override NORM: bool; // x is the residual stream and norm_w its RMSNorm weight (ACT must be none)

@group(0) @binding(5) var<storage, read> norm_w: array<vec4<f32>>; // (cols) f32 RMSNorm weight (NORM; any buffer otherwise)

// Sums finished by `finish`: ROWS row sums, then (NORM) the sum of squares of x at index ROWS.
const SUMS: u32 = MAX_ROWS + 1u;

// NORM: elements k0..k0+3 of the norm weight, 0 past cols.
fn norm4(k0: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (k0 + j < p.cols) {
      v[j] = norm_w[(k0 + j) >> 2u][(k0 + j) & 3u];
    }
  }
  return v;
}

// The finished sum of row r of token t: with NORM, times the RMSNorm scale from the sum of squares `ss`.
fn store_row(t: u32, r: u32, sum: f32, ss: f32) {
  if (NORM) {
    store_out(t, r, sum * (1.0 / sqrt(ss / f32(p.cols) + p.norm_eps)));
  } else {
    store_out(t, r, sum);
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = lid / LANES;
  let lane = lid % LANES;
  let row0 = ((wid.x + wid.y * nwg.x) * (WG / LANES) + g) * ROWS;
  let t = wid.z;
  let xb = p.x_offset + t * p.x_stride;
  // Rows past the end read the last row (in bounds) and are never stored.
  var wrow: array<u32, MAX_ROWS>;
  for (var r = 0u; r < ROWS; r++) {
    wrow[r] = p.w_offset + min(row0 + r, p.rows - 1u) * p.cols;
  }
  var acc: array<f32, SUMS>; // row sums, then (NORM) the sum of squares of x at [ROWS]
  let chunks = (p.cols + 7u) >> 3u;
  if (vec_aligned()) {
    let xv = xb >> 2u;
    for (var c = lane; c < chunks; c += LANES) {
      var xa = xin_vec(xv + 2u * c);
      var xc = xin_vec(xv + 2u * c + 1u);
      if (NORM) {
        acc[ROWS] += dot(xa, xa) + dot(xc, xc);
        xa *= norm_w[2u * c];
        xc *= norm_w[2u * c + 1u];
      }
      for (var r = 0u; r < ROWS; r++) {
        let q = w[(wrow[r] >> 3u) + c];
        acc[r] += dot(bf16x8_lo(q), xa) + dot(bf16x8_hi(q), xc);
      }
    }
  } else {
    for (var c = lane; c < chunks; c += LANES) {
      var xa = x4(xb, 8u * c);
      var xc = x4(xb, 8u * c + 4u);
      if (NORM) {
        acc[ROWS] += dot(xa, xa) + dot(xc, xc);
        xa *= norm4(8u * c);
        xc *= norm4(8u * c + 4u);
      }
      for (var r = 0u; r < ROWS; r++) {
        acc[r] += dot(w4(wrow[r], 8u * c), xa) + dot(w4(wrow[r], 8u * c + 4u), xc);
      }
    }
  }
  finish(lid, g, lane, row0, t, acc);
}
