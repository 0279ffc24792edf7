// Attention output gate (qwen3_5): out[t, h, d] *= sigmoid(gate[t, h, d]), the gate read from the q_proj
// output, where it follows each head's query (gate_head_stride = 2 head_dim).
// One invocation per element.

struct Params {
  count: u32, // tokens * heads * head_dim
  heads: u32,
  head_dim: u32,
  gate_offset: u32, // gate[0, 0, 0] in src
  gate_tok_stride: u32,
  gate_head_stride: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>; // gate values, see Params
@group(0) @binding(2) var<storage, read_write> out: array<f32>; // (tokens, heads head_dim)

// WG (invocations per workgroup, one element each): declared from src/gpu/shader-constants.ts (OUTPUT_GATE).

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.count) {
    return;
  }
  let per_token = p.heads * p.head_dim;
  let t = i / per_token;
  let h = (i % per_token) / p.head_dim;
  let d = i % p.head_dim;
  let g = src[p.gate_offset + t * p.gate_tok_stride + h * p.gate_head_stride + d];
  out[i] = out[i] * (1.0 / (1.0 + exp(-g)));
}
