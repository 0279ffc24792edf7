/** Shared by test/kernels-*.test.ts: seeded random data, BF16 bits, GPU buffers poisoned before use. */
import type { Gpu } from '../src/gpu/gpu.ts';

export { rng } from '../src/testing/random-weights.ts';

export function randomF32(n: number, random: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (random() * 2 - 1) * scale);
}

/** BF16 bits of random values (truncation of f32 is fine: any bit pattern is a valid weight). */
export function randomBf16(n: number, random: () => number, scale = 1): Uint16Array {
  const f = randomF32(n, random, scale);
  return Uint16Array.from(new Uint32Array(f.buffer), (u) => u >>> 16);
}

export function bf16ToF32(bits: Uint16Array): Float32Array {
  return new Float32Array(Uint32Array.from(bits, (b) => b << 16).buffer);
}

/** A storage buffer holding `data`, padded to 16 bytes. */
export async function gpuData(gpu: Gpu, data: ArrayBufferView, label = 'test data'): Promise<GPUBuffer> {
  const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
  const buffer = await gpu.createBuffer({ label, size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  gpu.writeBuffer(buffer, 0, data);
  return buffer;
}

/** A storage buffer of `n` f32 filled with NaN, so unwritten outputs cannot pass for results. */
export async function poisoned(gpu: Gpu, n: number, label = 'test output'): Promise<GPUBuffer> {
  return gpuData(gpu, new Float32Array(n).fill(Number.NaN), label);
}

export async function runPass(gpu: Gpu, record: (pass: GPUComputePassEncoder) => void): Promise<void> {
  const encoder = gpu.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  record(pass);
  pass.end();
  gpu.device.pushErrorScope('validation');
  gpu.submit([encoder.finish()]);
  const error = await gpu.device.popErrorScope();
  if (error) throw new Error(error.message);
}

export async function readF32(gpu: Gpu, buffer: GPUBuffer, n: number): Promise<Float32Array> {
  return new Float32Array(await gpu.read(buffer, 0, Math.ceil((n * 4) / 4) * 4)).slice(0, n);
}

/** max |a - b| / (atol + rtol * |b|) ≤ 1 elementwise; returns the worst index for messages (-1 when fine). */
export function worstMismatch(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol = 0): number {
  if (actual.length !== expected.length) return 0;
  let worst = -1;
  let worstRatio = 1;
  for (let i = 0; i < expected.length; i++) {
    const ratio = Math.abs(actual[i]! - expected[i]!) / (atol + rtol * Math.abs(expected[i]!));
    if (!(ratio <= worstRatio)) {
      worst = i;
      worstRatio = Number.isNaN(ratio) ? Infinity : ratio;
    }
  }
  return worst;
}


/** IEEE half bits of `x` (round to nearest even), as pack2x16float writes them. */
export function f16Bits(x: number): number {
  const u = new Uint32Array(Float32Array.of(x).buffer)[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112;
  if (e >= 31) return sign | 0x7c00;
  let shift = 13;
  let base = e << 10;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    shift = 14 - e;
    base = 0;
  }
  let half = base | (mant >>> shift);
  const rem = mant & ((1 << shift) - 1);
  const mid = 1 << (shift - 1);
  if (rem > mid || (rem === mid && (half & 1))) half++;
  return sign | half;
}

export function f16Value(bits: number): number {
  const s = bits & 0x8000 ? -1 : 1;
  const e = (bits >>> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Infinity;
  return s * (1024 + m) * 2 ** (e - 25);
}

/** f32 values as packed halves, two to a u32 (element 2i in the low half), and the values they hold. */
export function packF16(values: Float32Array): { words: Uint32Array; rounded: Float32Array } {
  const words = new Uint32Array(Math.ceil(values.length / 2));
  const rounded = new Float32Array(values.length);
  values.forEach((x, i) => {
    const b = f16Bits(x);
    words[i >> 1]! |= b << ((i & 1) * 16);
    rounded[i] = f16Value(b);
  });
  return { words, rounded };
}
