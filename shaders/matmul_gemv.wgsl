// out[t, r] = (accumulate ? out[t, r] : 0) + sum_k W[r, k] * x[t, k] (+ bias[r]), W in BF16.
// GEMV for decode: LANES threads reduce over k for each row, 256 / LANES rows per workgroup; one grid z per
// token. LANES = 32 suits GPUs (coalesced loads); LANES = 1 (a row per thread, no barriers) suits CPU
// implementations such as SwiftShader, where workgroup barriers are expensive.
// VEC reads 8 weights per vec4<u32> load (needs cols % 8 == 0 and aligned offsets, checked by the caller).
// #include bf16

override VEC: bool = false;
override LANES: u32 = 32u; // power of two, <= 256

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

var<workgroup> red: array<f32, 256>;

fn x_at(i: u32) -> f32 {
  return x[i >> 2u][i & 3u];
}

fn w_at(e: u32) -> f32 {
  let word = w[e >> 3u][(e >> 1u) & 3u];
  return select(bf16_lo(word), bf16_hi(word), (e & 1u) == 1u);
}

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
    var v = acc;
    if (p.bias == 1u) {
      v += bias[row];
    }
    let o = p.out_offset + t * p.out_stride + row;
    if (p.accumulate == 1u) {
      v = out[o] + v;
    }
    out[o] = v;
  }
}
