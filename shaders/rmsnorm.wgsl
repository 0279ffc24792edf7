// RMSNorm over rows (HF LlamaRMSNorm in fp32): out = (x * rsqrt(mean(x^2) + eps)) * weight,
// or out += that (accumulate: Gemma 3's post-attention / post-feed-forward norms before the residual add).
// One workgroup per row.
// #include reduce

struct Params {
  rows: u32,
  dim: u32,
  in_offset: u32, // first element of row 0 in x
  out_offset: u32, // first element of row 0 in out
  eps: f32,
  accumulate: u32, // 1: out += norm
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>; // (rows, dim) from in_offset
@group(0) @binding(2) var<storage, read> weight: array<f32>; // (dim)
@group(0) @binding(3) var<storage, read_write> out: array<f32>; // (rows, dim) from out_offset

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) {
    return;
  }
  let src = p.in_offset + row * p.dim;
  let dst = p.out_offset + row * p.dim;
  var s = 0.0;
  for (var i = lid; i < p.dim; i += WG) {
    let v = x[src + i];
    s += v * v;
  }
  let r = 1.0 / sqrt(reduce_sum(lid, s) / f32(p.dim) + p.eps);
  for (var i = lid; i < p.dim; i += WG) {
    let y = (x[src + i] * r) * weight[i];
    out[dst + i] = select(y, out[dst + i] + y, p.accumulate == 1u);
  }
}
