// Gated-MLP activations, selected by the override ACT (codes in src/gpu/kernels/matmul.ts, ACTIVATION_CODE):
// 0: none (x as is), 1: silu (SwiGLU: Llama, Qwen), 2: gelu_tanh (GeGLU: Gemma).

override ACT: u32 = 0u;

fn silu(g: f32) -> f32 {
  return g / (1.0 + exp(-g));
}

// 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))); the tanh argument is clamped so no implementation
// meets exp overflow inside tanh (tanh(±10) is ±1 in f32).
fn gelu_tanh(g: f32) -> f32 {
  let y = clamp(0.7978845608028654 * (g + 0.044715 * g * g * g), -10.0, 10.0);
  return 0.5 * g * (1.0 + tanh(y));
}

fn act(g: f32) -> f32 {
  if (ACT == 1u) {
    return silu(g);
  }
  return gelu_tanh(g);
}

fn act4(g: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(act(g.x), act(g.y), act(g.z), act(g.w));
}
