// span_prefix for df11_stream.wgsl in workgroup memory: a Hillis-Steele scan, 2 log2(WG) + 1 barriers.

var<workgroup> scan: array<u32, WG>;

/** (sum of `count` over invocations before `lid`, sum over the workgroup). Uniform control flow (barriers). */
fn span_prefix(count: u32, lid: u32) -> vec2<u32> {
  scan[lid] = count;
  workgroupBarrier();
  for (var off = 1u; off < WG; off <<= 1u) {
    var v = 0u;
    if (lid >= off) { v = scan[lid - off]; }
    workgroupBarrier();
    scan[lid] += v;
    workgroupBarrier();
  }
  return vec2<u32>(scan[lid] - count, scan[WG - 1u]);
}
