// Shared contract of matmul_gemv.wgsl and matmul_gemm.wgsl:
//   out[t, r] = (accumulate ? out[t, r] : 0) + sum_k W[r, k] * x[t, k] (+ bias[r]), W in BF16.
// #include bf16

struct Params {
  rows: u32,
  cols: u32,
  tokens: u32,
  w_offset: u32, // first element of W in w
  x_offset: u32, // first element of token 0 in x
  x_stride: u32,
  out_offset: u32, // element of (token 0, row 0) in out
  out_stride: u32,
  bias: u32, // 1: add bias[r]
  accumulate: u32, // 1: add to what out holds (residual connection)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>; // (tokens, x_stride) f32 from x_offset
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>; // (rows, cols) BF16, two per u32, from element w_offset
@group(0) @binding(3) var<storage, read> bias: array<f32>; // (rows)
@group(0) @binding(4) var<storage, read_write> out: array<f32>; // (tokens, out_stride) from out_offset

fn x_at(i: u32) -> f32 {
  return x[i >> 2u][i & 3u];
}

fn w_at(e: u32) -> f32 {
  let word = w[e >> 3u][(e >> 1u) & 3u];
  return select(bf16_lo(word), bf16_hi(word), (e & 1u) == 1u);
}

// Write the finished dot product `acc` of token t, row r (caller checks t < tokens, r < rows).
fn store_out(t: u32, r: u32, acc: f32) {
  var v = acc;
  if (p.bias == 1u) {
    v += bias[r];
  }
  let o = p.out_offset + t * p.out_stride + r;
  if (p.accumulate == 1u) {
    v = out[o] + v;
  }
  out[o] = v;
}
