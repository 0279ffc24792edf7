// matmul_common.wgsl's product as a GEMV for decode: LANES threads reduce over k for each row, 256 / LANES rows
// per workgroup; one grid z per token. LANES = 32 suits GPUs (coalesced loads); LANES = 1 (a row per thread,
// no barriers) suits CPU implementations such as SwiftShader, where workgroup barriers are expensive.
// VEC reads 8 weights per vec4<u32> load (needs cols % 8 == 0 and aligned offsets, checked by the caller).
// #include bf16
// #include matmul_common

override VEC: bool = false;
override LANES: u32 = 32u; // power of two, <= 256

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * (256u / LANES) + lid / LANES;
  let lane = lid % LANES;
  let t = wid.z;
  var acc = 0.0;
  if (row < p.rows) {
    let xb = p.x_offset + t * p.x_stride;
    let wb = p.w_offset + row * p.cols;
    if (VEC) {
      let xv = xb >> 2u;
      let wv = wb >> 3u;
      for (var c = lane; c < (p.cols >> 3u); c += LANES) {
        let q = w[wv + c];
        let a = vec4<f32>(bf16_lo(q.x), bf16_hi(q.x), bf16_lo(q.y), bf16_hi(q.y));
        let b = vec4<f32>(bf16_lo(q.z), bf16_hi(q.z), bf16_lo(q.w), bf16_hi(q.w));
        acc += dot(a, x[xv + 2u * c]) + dot(b, x[xv + 2u * c + 1u]);
      }
    } else {
      for (var k = lane; k < p.cols; k += LANES) {
        acc += w_at(wb + k) * x_at(xb + k);
      }
    }
  }
  if (LANES > 1u) {
    red[lid] = acc;
    workgroupBarrier();
    for (var stride = LANES / 2u; stride > 0u; stride >>= 1u) {
      if (lane < stride) {
        red[lid] += red[lid + stride];
      }
      workgroupBarrier();
    }
    acc = red[lid];
  }
  if (lane == 0u && row < p.rows) {
    store_out(t, row, acc);
  }
}
