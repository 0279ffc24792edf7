import type { RopeSpec } from '../format/model-spec.ts';

const f = Math.fround;

/**
 * RoPE inverse frequencies as HF transformers computes them in float32 (`1 / theta^(2i/d)`), with
 * Llama 3.x frequency scaling when the spec asks for it.  (head_dim / 2)
 */
export function inverseFrequencies(rope: RopeSpec, headDim: number): Float32Array {
  const half = headDim / 2;
  const inv = Float32Array.from({ length: half }, (_, i) => f(1 / f(Math.pow(rope.theta, f((2 * i) / headDim)))));
  const l3 = rope.llama3;
  if (rope.type !== 'llama3' || !l3) return inv;
  const lowWavelen = l3.originalMaxPositionEmbeddings / l3.lowFreqFactor;
  const highWavelen = l3.originalMaxPositionEmbeddings / l3.highFreqFactor;
  return inv.map((freq) => {
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) return freq;
    if (wavelen > lowWavelen) return freq / l3.factor;
    const smooth = (l3.originalMaxPositionEmbeddings / wavelen - l3.lowFreqFactor) / (l3.highFreqFactor - l3.lowFreqFactor);
    return (1 - smooth) * (freq / l3.factor) + smooth * freq;
  });
}

/**
 * cos and sin of every (position, frequency) angle, computed once per model on the CPU: the angle is
 * rounded to f32 like HF's `inv_freq @ positions`, then cos/sin are taken in f64 (GPU sin/cos of large
 * angles are not accurate enough).  (max_seq, head_dim / 2, 2)
 */
export function ropeTable(rope: RopeSpec, headDim: number, maxSeq: number): Float32Array {
  const inv = inverseFrequencies(rope, headDim);
  const half = headDim / 2;
  const table = new Float32Array(maxSeq * half * 2);
  for (let pos = 0; pos < maxSeq; pos++) {
    for (let i = 0; i < half; i++) {
      const angle = f(pos * inv[i]!);
      table[(pos * half + i) * 2] = Math.cos(angle);
      table[(pos * half + i) * 2 + 1] = Math.sin(angle);
    }
  }
  return table;
}
