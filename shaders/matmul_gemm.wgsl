// matmul_common.wgsl's product, tiled for many tokens (prefill):
// each workgroup computes a BT x BR tile of out, stepping over k in BK-wide slices staged in workgroup memory.
// #include matmul_common

const BT: u32 = 32u; // tokens per tile
const BR: u32 = 64u; // rows per tile
const BK: u32 = 16u; // k per slice
const TT: u32 = 2u; // tokens per thread
const TR: u32 = 4u; // rows per thread
var<workgroup> xs: array<f32, BK * BT>; // [k][token]
var<workgroup> ws: array<f32, BK * BR>; // [k][row]

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r0 = wid.x * BR;
  let t0 = wid.y * BT;
  let tr = lid % (BR / TR); // this thread's rows: r0 + tr * TR + j
  let tt = lid / (BR / TR); // this thread's tokens: t0 + tt * TT + i
  var acc: array<f32, TT * TR>;
  for (var k0 = 0u; k0 < p.cols; k0 += BK) {
    for (var i = lid; i < BK * BT; i += 256u) {
      let kk = i % BK;
      let ti = i / BK;
      var v = 0.0;
      if (t0 + ti < p.tokens && k0 + kk < p.cols) {
        v = x_at(p.x_offset + (t0 + ti) * p.x_stride + k0 + kk);
      }
      xs[kk * BT + ti] = v;
    }
    for (var i = lid; i < BK * BR; i += 256u) {
      let kk = i % BK;
      let ri = i / BK;
      var v = 0.0;
      if (r0 + ri < p.rows && k0 + kk < p.cols) {
        v = w_at(p.w_offset + (r0 + ri) * p.cols + k0 + kk);
      }
      ws[kk * BR + ri] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      for (var i = 0u; i < TT; i++) {
        let xv = xs[kk * BT + tt * TT + i];
        for (var j = 0u; j < TR; j++) {
          acc[i * TR + j] += xv * ws[kk * BR + tr * TR + j];
        }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < TT; i++) {
    let t = t0 + tt * TT + i;
    for (var j = 0u; j < TR; j++) {
      let r = r0 + tr * TR + j;
      if (t < p.tokens && r < p.rows) {
        store_out(t, r, acc[i * TR + j]);
      }
    }
  }
}
