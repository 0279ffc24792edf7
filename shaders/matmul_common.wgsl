// Shared contract of the matmul shaders (matmul_gemv*.wgsl, matmul_gemm.wgsl):
//   out[t, r] = (accumulate ? out[t, r] : 0) + sum_k W[r, k] * xin[t, k] (+ bias[r]), W in BF16,
// where xin[t, k] = x[t, k], or with ACT != 0 (a gated MLP's down projection reading the gate|up output)
// xin[t, k] = act(x[t, k]) * x[t, cols + k]: gate at k, up `cols` elements after it.
// The result of (t, r) depends only on row r of W, xin[t] and cols (never on rows, offsets or tiling), so
// a matrix split into tiles or placed elsewhere gives the same bits.
// #include bf16
// #include activation

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
  norm_eps: f32, // the GEMV with NORM: the RMSNorm epsilon (unused otherwise)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>; // (tokens, x_stride) f32 from x_offset
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>; // (rows, cols) BF16, two per u32, from element w_offset
@group(0) @binding(3) var<storage, read> bias: array<f32>; // (rows)
@group(0) @binding(4) var<storage, read_write> out: array<f32>; // (tokens, out_stride) from out_offset

fn x_at(i: u32) -> f32 {
  return x[i >> 2u][i & 3u];
}

// xin at element i of x (i = x_offset + t * x_stride + k).
fn xin_at(i: u32) -> f32 {
  if (ACT == ACT_NONE) {
    return x_at(i);
  }
  return act(x_at(i)) * x_at(i + p.cols);
}

// xin at elements 4v..4v+3 of x (needs x_offset, x_stride and, with ACT, cols multiples of 4).
fn xin_vec(v: u32) -> vec4<f32> {
  if (ACT == ACT_NONE) {
    return x[v];
  }
  return act4(x[v]) * x[v + (p.cols >> 2u)];
}

fn w_at(e: u32) -> f32 {
  let word = w[e >> 3u][(e >> 1u) & 3u];
  return select(bf16_lo(word), bf16_hi(word), (e & 1u) == 1u);
}

// True when W rows and x rows start on 16-byte boundaries, so vec4 loads line up (uniform per dispatch).
fn vec_aligned() -> bool {
  return (p.cols & 7u) == 0u && (p.w_offset & 7u) == 0u && (p.x_offset & 3u) == 0u && (p.x_stride & 3u) == 0u;
}

// 8 BF16 of a vec4<u32> load as two vec4<f32>.
fn bf16x8_lo(q: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(bf16_lo(q.x), bf16_hi(q.x), bf16_lo(q.y), bf16_hi(q.y));
}

fn bf16x8_hi(q: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(bf16_lo(q.z), bf16_hi(q.z), bf16_lo(q.w), bf16_hi(q.w));
}

// Element k0 + j (j < 4) of a W row starting at element e, 0 past cols.
fn w4(e: u32, k0: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (k0 + j < p.cols) {
      v[j] = w_at(e + k0 + j);
    }
  }
  return v;
}

// xin at columns k0 + j (j < 4) of the token whose row starts at element b, 0 past cols.
fn x4(b: u32, k0: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (k0 + j < p.cols) {
      v[j] = xin_at(b + k0 + j);
    }
  }
  return v;
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
