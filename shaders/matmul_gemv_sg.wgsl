enable subgroups;
// GEMV (matmul_gemv_body.wgsl) with subgroup reductions, compiled only where the device has the
// `subgroups` feature. One row group per workgroup (LANES == WG, checked in matmul.ts): each subgroup adds
// its partial sums with subgroupAdd, its first invocation writes them to a slot, and invocation r < ROWS
// adds the slots of row r in order. Subgroups are taken to be consecutive ranges of local invocation
// indices (as on every Vulkan, Metal and D3D12 GPU we know); the kernel tests check it on each adapter.
// #include matmul_gemv_body

const MIN_SUBGROUP: u32 = 4u; // smallest subgroup size WebGPU allows
const SLOTS: u32 = 256u / MIN_SUBGROUP;
var<workgroup> part: array<f32, 576>; // (SUMS, SLOTS) per-subgroup sums

fn finish(lid: u32, g: u32, lane: u32, row0: u32, t: u32, acc: array<f32, SUMS>) {
  let sg_lane = subgroupExclusiveAdd(1u);
  let sg_size = subgroupAdd(1u);
  let slot = lid / sg_size;
  let n = ROWS + select(0u, 1u, NORM); // sums to reduce
  for (var r = 0u; r < n; r++) {
    let s = subgroupAdd(acc[r]);
    if (sg_lane == 0u) {
      part[r * SLOTS + slot] = s;
    }
  }
  workgroupBarrier();
  if (lid < ROWS && row0 + lid < p.rows) {
    var s = 0.0;
    var ss = 0.0;
    for (var i = 0u; i < (WG + sg_size - 1u) / sg_size; i++) {
      s += part[lid * SLOTS + i];
      if (NORM) {
        ss += part[ROWS * SLOTS + i];
      }
    }
    store_row(t, row0 + lid, s, ss);
  }
}
