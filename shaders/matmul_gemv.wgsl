// GEMV (matmul_gemv_body.wgsl) with the row sums of each group reduced in workgroup memory: a tree over
// the group's LANES invocations. LANES = 1 (a row group per invocation, no barrier) suits CPU
// implementations such as SwiftShader, where workgroup barriers are expensive.
// #include matmul_gemv_body

var<workgroup> red: array<f32, 2048>; // (MAX_ROWS, WG) partial sums of every invocation, per row of its group

fn finish(lid: u32, g: u32, lane: u32, row0: u32, t: u32, acc: array<f32, MAX_ROWS>) {
  if (LANES == 1u) {
    for (var r = 0u; r < ROWS; r++) {
      if (row0 + r < p.rows) {
        store_out(t, row0 + r, acc[r]);
      }
    }
    return;
  }
  for (var r = 0u; r < ROWS; r++) {
    red[r * WG + lid] = acc[r];
  }
  workgroupBarrier();
  for (var stride = LANES / 2u; stride > 0u; stride >>= 1u) {
    if (lane < stride) {
      for (var r = 0u; r < ROWS; r++) {
        red[r * WG + lid] += red[r * WG + lid + stride];
      }
    }
    workgroupBarrier();
  }
  for (var r = lane; r < ROWS; r += LANES) {
    if (row0 + r < p.rows) {
      store_out(t, row0 + r, red[r * WG + g * LANES]);
    }
  }
}
