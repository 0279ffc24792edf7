// GEMV (matmul_gemv_body.wgsl) with the row sums of each group reduced in workgroup memory: a tree over
// the group's LANES invocations. LANES = 1 (a row group per invocation, no barrier) suits CPU
// implementations such as SwiftShader, where workgroup barriers are expensive.
// #include matmul_gemv_body

var<workgroup> red: array<f32, 2304>; // (SUMS, WG <= 256) partial sums of every invocation, per sum of its group

fn finish(lid: u32, g: u32, lane: u32, row0: u32, t: u32, acc: array<f32, SUMS>) {
  if (LANES == 1u) {
    for (var r = 0u; r < ROWS; r++) {
      if (row0 + r < p.rows) {
        store_row(t, row0 + r, acc[r], acc[ROWS]);
      }
    }
    return;
  }
  let n = ROWS + select(0u, 1u, NORM); // sums to reduce
  for (var r = 0u; r < n; r++) {
    red[r * WG + lid] = acc[r];
  }
  workgroupBarrier();
  for (var stride = LANES / 2u; stride > 0u; stride >>= 1u) {
    if (lane < stride) {
      for (var r = 0u; r < n; r++) {
        red[r * WG + lid] += red[r * WG + lid + stride];
      }
    }
    workgroupBarrier();
  }
  for (var r = lane; r < ROWS; r += LANES) {
    if (row0 + r < p.rows) {
      store_row(t, row0 + r, red[r * WG + g * LANES], red[ROWS * WG + g * LANES]);
    }
  }
}
