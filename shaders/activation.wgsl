// Gated-MLP activations, selected by the override ACT: ACT_NONE (x as is), ACT_SILU (SwiGLU: Llama, Qwen),
// ACT_GELU_TANH (GeGLU: Gemma), declared from src/gpu/shader-constants.ts (ACTIVATION).

override ACT: u32;

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
  switch ACT {
    case ACT_SILU: { return silu(g); }
    case ACT_GELU_TANH: { return gelu_tanh(g); }
    default: { return g; } // ACT_NONE
  }
}

fn act4(g: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(act(g.x), act(g.y), act(g.z), act(g.w));
}
