// Fused DFloat11 decode + GEMV (df11_gemv_body.wgsl) with each row's sum reduced by a tree in workgroup
// memory: log2(WG) barriers per row a block touches. Also the home of the `reduce` entry point for both.
// The span prefix sum is in workgroup memory too (df11_scan.wgsl).
// #include df11_scan
// #include df11_gemv_body

var<workgroup> red: array<f32, WG>;

/** Sum of `acc` over the workgroup, valid in invocation 0. Uniform control flow (barriers). */
fn row_total(acc: f32, lid: u32, r: u32) -> f32 {
  red[lid] = acc;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off >>= 1u) {
    if (lid < off) { red[lid] += red[lid + off]; }
    workgroupBarrier();
  }
  return red[0];
}
