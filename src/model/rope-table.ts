import type { RopeSpec } from '../format/model-spec.ts';

const f = Math.fround;

/**
 * How precise the inverse frequencies are. HF transformers keeps `inv_freq` as a module buffer, so a
 * model loaded in its BF16 dtype has it cast to BF16 (and back to f32 when then computing in fp32). The
 * stories references were made that way: 'bf16' matches them to ~1e-5, 'f32' only to ~1e-2. The tiny
 * random fixtures' references kept f32 frequencies: 'f32' matches them to ~6e-7, 'bf16' to ≤ 3e-4.
 * generator.ts picks 'bf16' for checkpoints whose config says dtype bfloat16.
 */
export type RopeFrequencyPrecision = 'f32' | 'bf16';

/**
 * RoPE inverse frequencies as HF transformers computes them in float32 (`1 / theta^(2i/d)`), with
 * Llama 3.x frequency scaling when the spec asks for it.  (head_dim / 2)
 */
export function inverseFrequencies(rope: RopeSpec, headDim: number, precision: RopeFrequencyPrecision = 'f32'): Float32Array {
  const inv = scaledFrequencies(rope, headDim);
  return precision === 'bf16' ? inv.map(roundToBf16) : inv;
}

function roundToBf16(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0]!;
  return new Float32Array(new Uint32Array([((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16]).buffer)[0]!;
}

function scaledFrequencies(rope: RopeSpec, headDim: number): Float32Array {
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
export function ropeTable(rope: RopeSpec, headDim: number, maxSeq: number, precision: RopeFrequencyPrecision = 'f32'): Float32Array {
  const inv = inverseFrequencies(rope, headDim, precision);
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
