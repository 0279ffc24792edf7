// matmul_common.wgsl's product as a GEMV for decode (few tokens; one grid z per token). Included by
// matmul_gemv.wgsl (workgroup-memory reduction) and matmul_gemv_sg.wgsl (subgroup reduction), which
// define `finish`. A workgroup of WG invocations holds WG / LANES groups; a group's LANES invocations
// share ROWS consecutive rows: each reads x for 8 columns once (two vec4<f32>) and the same 8 columns of
// each of its ROWS rows (one vec4<u32> = 8 BF16 per row), striding over k by LANES; `finish` then adds the
// group's partial sums per row. Consecutive lanes read consecutive 16 bytes of a row (coalesced).
// Per-row result depends on (WG, LANES, reduction) only, never on ROWS, the tile or the offsets.
// #include matmul_common

// Set by src/gpu/kernels/matmul.ts (GemvVariant); MAX_ROWS is declared from src/gpu/shader-constants.ts (GEMV).
override WG: u32; // invocations per workgroup: a power of two, <= 256
override LANES: u32; // invocations per row group: a power of two dividing WG
override ROWS: u32; // rows per group, 1..MAX_ROWS

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
  var acc: array<f32, MAX_ROWS>;
  let chunks = (p.cols + 7u) >> 3u;
  if (vec_aligned()) {
    let xv = xb >> 2u;
    for (var c = lane; c < chunks; c += LANES) {
      let xa = xin_vec(xv + 2u * c);
      let xc = xin_vec(xv + 2u * c + 1u);
      for (var r = 0u; r < ROWS; r++) {
        let q = w[(wrow[r] >> 3u) + c];
        acc[r] += dot(bf16x8_lo(q), xa) + dot(bf16x8_hi(q), xc);
      }
    }
  } else {
    for (var c = lane; c < chunks; c += LANES) {
      let xa = x4(xb, 8u * c);
      let xc = x4(xb, 8u * c + 4u);
      for (var r = 0u; r < ROWS; r++) {
        acc[r] += dot(w4(wrow[r], 8u * c), xa) + dot(w4(wrow[r], 8u * c + 4u), xc);
      }
    }
  }
  finish(lid, g, lane, row0, t, acc);
}
