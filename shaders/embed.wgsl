// Embedding rows BF16 -> f32 activations, times `scale` (Gemma: sqrt(hidden); 1 elsewhere). The weights layer has already gathered the token rows
// (copied from a resident BF16 table or row-decoded from DF11) into `rows`.
// #include bf16

struct Params {
  count: u32, // n_tokens * dim
  rows_offset: u32, // first element of the rows in `rows`
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> rows: array<u32>; // (n_tokens, dim) BF16, two per u32 from element rows_offset
@group(0) @binding(2) var<storage, read_write> out: array<f32>; // (n_tokens, dim)

// WG (elements per workgroup): declared from src/gpu/shader-constants.ts (EMBED).
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.count) {
    return;
  }
  let e = p.rows_offset + i;
  let word = rows[e >> 1u];
  out[i] = select(bf16_lo(word), bf16_hi(word), (e & 1u) == 1u) * p.scale;
}
