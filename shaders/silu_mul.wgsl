// SwiGLU activation: out = silu(gate) * up, reading the fused gate|up projection output.

struct Params {
  count: u32, // n_tokens * intermediate
  dim: u32, // intermediate
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate_up: array<f32>; // (n_tokens, 2 * intermediate): gate | up
@group(0) @binding(2) var<storage, read_write> out: array<f32>; // (n_tokens, intermediate)

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= p.count) {
    return;
  }
  let t = i / p.dim;
  let g = gate_up[i + t * p.dim];
  out[i] = g / (1.0 + exp(-g)) * gate_up[i + (t + 1u) * p.dim];
}
