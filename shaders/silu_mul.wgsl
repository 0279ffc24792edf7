// Gated MLP activation: out = act(gate) * up, reading the fused gate|up projection output.
// act: 0 = silu (SwiGLU), 1 = GELU with the tanh approximation (GeGLU, HF gelu_pytorch_tanh).

struct Params {
  count: u32, // n_tokens * intermediate
  dim: u32, // intermediate
  act: u32, // ACT_SILU or ACT_GELU_TANH
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate_up: array<f32>; // (n_tokens, 2 * intermediate): gate | up
@group(0) @binding(2) var<storage, read_write> out: array<f32>; // (n_tokens, intermediate)

const ACT_SILU: u32 = 0u;
const ACT_GELU_TANH: u32 = 1u;

fn gelu_tanh(x: f32) -> f32 {
  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); the tanh argument is clamped where tanh is +-1 in f32
  // (some tanh implementations overflow to NaN for large arguments).
  let u = clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -15.0, 15.0);
  return 0.5 * x * (1.0 + tanh(u));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= p.count) {
    return;
  }
  let t = i / p.dim;
  let g = gate_up[i + t * p.dim];
  let a = select(g / (1.0 + exp(-g)), gelu_tanh(g), p.act == ACT_GELU_TANH);
  out[i] = a * gate_up[i + (t + 1u) * p.dim];
}
