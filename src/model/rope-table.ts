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
 * RoPE inverse frequencies as HF transformers computes them in float32 (`1 / theta^(2i/d)`, d = the rotary
 * dims), with the spec's scaling (Llama 3.x, linear; longrope's short factors, or its long factors when
 * `long`).  (rotary_dim / 2)
 */
export function inverseFrequencies(rope: RopeSpec, precision: RopeFrequencyPrecision = 'f32', long = false): Float32Array {
  const inv = scaledFrequencies(rope, long);
  return precision === 'bf16' ? inv.map(roundToBf16) : inv;
}

export function roundToBf16(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0]!;
  return new Float32Array(new Uint32Array([((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16]).buffer)[0]!;
}

function scaledFrequencies(rope: RopeSpec, long: boolean): Float32Array {
  const d = rope.rotaryDim;
  const half = d / 2;
  const power = (i: number): number => f(Math.pow(rope.theta, f((2 * i) / d)));
  if (rope.type === 'longrope' && rope.longrope) {
    // HF: 1 / (ext_factors * base^(2i/d)), ext = long factors past the original context, else short.
    const ext = long ? rope.longrope.longFactor : rope.longrope.shortFactor;
    return Float32Array.from({ length: half }, (_, i) => f(1 / f(ext[i]! * power(i))));
  }
  const inv = Float32Array.from({ length: half }, (_, i) => f(1 / power(i)));
  if (rope.type === 'linear' && rope.linearFactor) return inv.map((x) => x / rope.linearFactor!);
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
 * angles are not accurate enough). longrope: positions from original_max_position_embeddings on use the
 * long factors (HF switches to them once the sequence passes that length: token by token, this is exactly
 * where it switches), and cos/sin are scaled by the attention factor.  (max_seq, rotary_dim / 2, 2)
 */
export function ropeTable(rope: RopeSpec, maxSeq: number, precision: RopeFrequencyPrecision = 'f32'): Float32Array {
  const short = inverseFrequencies(rope, precision);
  const lr = rope.longrope;
  const long = lr ? inverseFrequencies(rope, precision, true) : short;
  const scale = lr ? lr.attentionFactor : 1;
  const half = rope.rotaryDim / 2;
  const table = new Float32Array(maxSeq * half * 2);
  for (let pos = 0; pos < maxSeq; pos++) {
    const inv = lr && pos >= lr.originalMaxPositionEmbeddings ? long : short;
    for (let i = 0; i < half; i++) {
      const angle = f(pos * inv[i]!);
      table[(pos * half + i) * 2] = f(Math.cos(angle)) * scale;
      table[(pos * half + i) * 2 + 1] = f(Math.sin(angle)) * scale;
    }
  }
  return table;
}
