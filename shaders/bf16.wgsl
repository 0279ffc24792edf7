// Shared helpers: BF16 weights are read as raw bits packed two per u32 (element 2i in the low half).
// No shader-f16 needed: a BF16 value is the high half of an f32.

fn bf16_lo(word: u32) -> f32 {
  return bitcast<f32>(word << 16u);
}

fn bf16_hi(word: u32) -> f32 {
  return bitcast<f32>(word & 0xffff0000u);
}
