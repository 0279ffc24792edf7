// span_prefix for df11_stream.wgsl with subgroup operations (the including shader enables `subgroups`):
// a scan within each subgroup, one barrier, then every subgroup adds the totals of the subgroups before it.
// Subgroups are taken to be consecutive ranges of local invocation indices (as in matmul_gemv_sg.wgsl);
// the decode tests check the result bit for bit.

// SLOTS (most subgroups of a workgroup: WG <= 512, subgroups of >= 4 invocations): declared from
// src/gpu/shader-constants.ts (DF11_SCAN_SG).
var<workgroup> sg_total: array<u32, SLOTS>;  // (subgroups) sum of each subgroup's counts

/** (sum of `count` over invocations before `lid`, sum over the workgroup). Uniform control flow (barrier, subgroup ops). */
fn span_prefix(count: u32, lid: u32) -> vec2<u32> {
  let lane = subgroupExclusiveAdd(1u);
  let size = subgroupAdd(1u);
  let before = subgroupExclusiveAdd(count);
  let sg = lid / size;
  if (lane == size - 1u) { sg_total[sg] = before + count; }
  workgroupBarrier();
  // the lanes share out the subgroup totals (one each for 32 lanes and WG <= 1024)
  var earlier = 0u;
  var all = 0u;
  for (var i = lane; i < (WG + size - 1u) / size; i += size) {
    let t = sg_total[i];
    all += t;
    if (i < sg) { earlier += t; }
  }
  return vec2<u32>(subgroupAdd(earlier) + before, subgroupAdd(all));
}
