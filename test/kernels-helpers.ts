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
  gpu.device.queue.submit([encoder.finish()]);
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

