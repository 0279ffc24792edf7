// matmul_common.wgsl's product, register-tiled for many tokens (prefill). A workgroup of 256 invocations
// (a 16 x 16 grid) computes a tile of BT = 64 tokens x 16 * TR rows of out; each invocation owns 4 tokens
// x TR rows in registers (vec4 accumulators). The workgroup steps over k in BK-wide slices staged in
// workgroup memory as f32: x with one vec4<f32> load per invocation, W with one vec4<u32> load (8 BF16) per
// (row, 8 columns). Each output adds its products in k order, whatever the tile, so tiles never change bits.
// #include matmul_common

override TR: u32; // rows per invocation: 4 (64-row tiles) or 8 (128-row tiles); set by src/gpu/kernels/matmul.ts
const TT: u32 = 4u; // tokens per invocation
// BT: tokens per tile (16 * TT), declared from src/gpu/shader-constants.ts (GEMM).
const_assert BT == 16u * TT;
const BK: u32 = 16u; // k per slice
const MAX_BR: u32 = 128u; // rows per tile at TR = 8
var<workgroup> xs: array<vec4<f32>, 256>; // (BK, BT / 4): slice column k, tokens 4i..4i+3 (4 KiB)
var<workgroup> ws: array<vec4<f32>, 512>; // (BK, MAX_BR / 4): slice column k, rows 4i..4i+3 (8 KiB)

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let br = 16u * TR;
  let r0 = wid.x * br;
  let t0 = wid.y * BT;
  let tr = lid % 16u; // rows r0 + 64 m + 4 tr + j (m < TR / 4, j < 4)
  let tt = lid / 16u; // tokens t0 + 4 tt + i (i < 4)
  let aligned = vec_aligned();
  var acc: array<vec4<f32>, 8>; // [m * 4 + i]: token t0 + 4 tt + i, rows r0 + 64 m + 4 tr + (0..3)
  for (var k0 = 0u; k0 < p.cols; k0 += BK) {
    // x slice: token ti, columns k0 + 4 q .. + 3
    let ti = lid / 4u;
    let q = lid % 4u;
    var xv = vec4<f32>(0.0);
    if (t0 + ti < p.tokens) {
      let b = p.x_offset + (t0 + ti) * p.x_stride;
      if (aligned) {
        if (k0 + 4u * q < p.cols) {
          xv = xin_vec((b + k0 + 4u * q) >> 2u);
        }
      } else {
        xv = x4(b, k0 + 4u * q);
      }
    }
    for (var j = 0u; j < 4u; j++) {
      xs[(4u * q + j) * (BT / 4u) + ti / 4u][ti % 4u] = xv[j];
    }
    // W slice: row ri, columns k0 + 8 h .. + 7
    for (var i = lid; i < 2u * br; i += 256u) {
      let ri = i >> 1u;
      let h = i & 1u;
      let k = k0 + 8u * h;
      var lo = vec4<f32>(0.0);
      var hi = vec4<f32>(0.0);
      if (r0 + ri < p.rows && k < p.cols) {
        let e = p.w_offset + (r0 + ri) * p.cols;
        if (aligned) {
          let qw = w[(e >> 3u) + (k >> 3u)];
          lo = bf16x8_lo(qw);
          hi = bf16x8_hi(qw);
        } else {
          lo = w4(e, k);
          hi = w4(e, k + 4u);
        }
      }
      for (var j = 0u; j < 4u; j++) {
        ws[(8u * h + j) * (MAX_BR / 4u) + ri / 4u][ri % 4u] = lo[j];
        ws[(8u * h + 4u + j) * (MAX_BR / 4u) + ri / 4u][ri % 4u] = hi[j];
      }
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      let xk = xs[k * (BT / 4u) + tt];
      for (var m = 0u; m < TR / 4u; m++) {
        let wk = ws[k * (MAX_BR / 4u) + 16u * m + tr];
        acc[m * 4u] += wk * xk.x;
        acc[m * 4u + 1u] += wk * xk.y;
        acc[m * 4u + 2u] += wk * xk.z;
        acc[m * 4u + 3u] += wk * xk.w;
      }
    }
    workgroupBarrier();
  }
  for (var m = 0u; m < TR / 4u; m++) {
    for (var i = 0u; i < 4u; i++) {
      let t = t0 + 4u * tt + i;
      for (var j = 0u; j < 4u; j++) {
        let r = r0 + 64u * m + 4u * tr + j;
        if (t < p.tokens && r < p.rows) {
          store_out(t, r, acc[m * 4u + i][j]);
        }
      }
    }
  }
}
