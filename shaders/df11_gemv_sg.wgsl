enable subgroups;
// Fused DFloat11 decode + GEMV (df11_gemv_body.wgsl) with subgroup reductions, compiled only where the
// device has the `subgroups` feature: one barrier per row a block touches. Each subgroup adds its products
// with subgroupAdd, its first invocation writes the sum to a slot, invocation 0 adds the slots in order.
// Slots alternate between two halves by row parity, so writing row r + 1's never races reading row r's
// (the row after a chunk boundary may repeat a parity, but a chunk ends with a barrier). Subgroups are taken
// to be consecutive ranges of local invocation indices, as in matmul_gemv_sg.wgsl; the kernel tests check it.
// The span prefix sum uses subgroup operations too (df11_scan_sg.wgsl, which also declares SLOTS: the most
// subgroups of a workgroup).
// #include df11_scan_sg
// #include df11_gemv_body

var<workgroup> part: array<f32, 2u * SLOTS>; // (2, SLOTS) per-subgroup sums, by row parity

/** Sum of `acc` over the workgroup, valid in invocation 0. Uniform control flow (barriers, subgroup ops). */
fn row_total(acc: f32, lid: u32, r: u32) -> f32 {
  let sg_lane = subgroupExclusiveAdd(1u);
  let sg_size = subgroupAdd(1u);
  let s = subgroupAdd(acc);
  let base = (r & 1u) * SLOTS;
  if (sg_lane == 0u) { part[base + lid / sg_size] = s; }
  workgroupBarrier();
  var t = 0.0;
  if (lid == 0u) {
    for (var i = 0u; i < (WG + sg_size - 1u) / sg_size; i++) { t += part[base + i]; }
  }
  return t;
}
