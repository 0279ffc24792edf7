import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindGroupEntries, shaderBindings } from '../src/gpu/bindings.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { kernelPipeline } from '../src/gpu/kernels/kernel.ts';
import { RopeKernel } from '../src/gpu/kernels/rope.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { codeOf, codeOfCall } from '../src/testing/error-code.ts';
import { poisoned } from './kernels-helpers.ts';

const WGSL = `
struct Params { n: u32 }
// @group(0) @binding(9) var<storage, read> commented_out: array<f32>;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> out: array<f32>; // (n)
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>; /* (n / 4) */
var<workgroup> red: array<f32, 64>;
`;

describe('storage buffers bind by their names in the shader', () => {
  it('reads the indices of the uniform Params and of each named storage buffer', () => {
    expect(shaderBindings('t', WGSL, ['x', 'out'])).toEqual({ shader: 't', params: 0, storage: { x: 1, out: 2 } });
  });

  it('refuses an unknown, a missing or a repeated name, and a shader without one Params uniform', () => {
    expect(codeOfCall(() => shaderBindings('t', WGSL, ['x', 'output']))).toBe('gpu-validation');
    expect(codeOfCall(() => shaderBindings('t', WGSL, ['x']))).toBe('gpu-validation');
    expect(codeOfCall(() => shaderBindings('t', WGSL, ['x', 'out', 'x']))).toBe('gpu-validation');
    expect(codeOfCall(() => shaderBindings('t', WGSL, ['x', 'out', 'commented_out']))).toBe('gpu-validation');
    expect(codeOfCall(() => shaderBindings('t', WGSL.replace('var<uniform> p: Params', 'var<uniform> p: Other'), ['x', 'out']))).toBe('gpu-validation');
  });

  it('an entry point of a module with several names the buffers it uses, a part of those declared', () => {
    expect(shaderBindings('t', WGSL, ['out'], 'reduce')).toEqual({ shader: 't:reduce', params: 0, storage: { out: 2 } });
    expect(codeOfCall(() => shaderBindings('t', WGSL, ['out', 'output'], 'reduce'))).toBe('gpu-validation');
    expect(codeOfCall(() => shaderBindings('t', WGSL, ['out', 'out'], 'reduce'))).toBe('gpu-validation');
  });

  it('bind group entries go to the declared indices, whatever the order of the names', () => {
    const bindings = shaderBindings('t', WGSL, ['out', 'x']);
    const buffer = (label: string) => ({ label }) as unknown as GPUBuffer;
    const entries = bindGroupEntries(bindings, { buffer: buffer('params') }, { x: { buffer: buffer('x') }, out: { buffer: buffer('out') } });
    expect(entries.map((e) => [e.binding, ((e.resource as GPUBufferBinding).buffer as unknown as { label: string }).label])).toEqual([[0, 'params'], [1, 'x'], [2, 'out']]);
    const wrong = { x: { buffer: buffer('x') }, output: { buffer: buffer('out') } } as unknown as Record<'x' | 'out', GPUBufferBinding>;
    expect(codeOfCall(() => bindGroupEntries(bindings, { buffer: buffer('params') }, wrong))).toBe('gpu-validation');
  });

  describe('at pipeline creation', () => {
    let gpu: Gpu;
    beforeAll(async () => {
      gpu = await createNodeGpu();
    });
    afterAll(() => gpu?.destroy());

    it('a kernel pipeline with a wrong or missing storage name is a gpu-validation error', async () => {
      expect(await codeOf(kernelPipeline(gpu, 'rmsnorm', ['x', 'weights', 'out']))).toBe('gpu-validation');
      expect(await codeOf(kernelPipeline(gpu, 'rmsnorm', ['x', 'out']))).toBe('gpu-validation');
      // names resolved through an include (matmul_common.wgsl)
      expect(await codeOf(kernelPipeline(gpu, 'matmul_gemv', ['x', 'w', 'out']))).toBe('gpu-validation');
      expect(await codeOf(kernelPipeline(gpu, 'rmsnorm', ['out', 'x', 'weight']))).toBe('ok');
    });

    it("a dispatch past the device's maxComputeWorkgroupsPerDimension is gpu-limits, and bad arguments are typed errors", async () => {
      const rope = await RopeKernel.create(gpu);
      const buffers = await Promise.all([1, 2, 3, 4, 5].map(() => poisoned(gpu, 64)));
      const [src, cosSin, norm, q, cache] = buffers;
      const call = await rope.bind({ src: src!, cosSin: cosSin!, qNorm: norm!, kNorm: norm!, q: q!, kCache: cache!, vCache: cache! });
      const encoder = gpu.device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      const args = { tokens: 1, qHeads: 1, kvHeads: 1, headDim: 8, pos0: 0, maxSeq: 2, srcTokenStride: 24, kOffset: 8, vOffset: 16, rotate: true };
      const max = gpu.limits.maxComputeWorkgroupsPerDimension;
      expect(codeOfCall(() => call.encode(pass, { ...args, qHeads: max - 1 }))).toBe('gpu-limits');
      expect(codeOfCall(() => call.encode(pass, { ...args, tokens: max + 1 }))).toBe('gpu-limits');
      expect(codeOfCall(() => call.encode(pass, { ...args, headDim: 7 }))).toBe('unsupported-architecture');
      expect(codeOfCall(() => call.encode(pass, { ...args, rotaryDim: 10 }))).toBe('unsupported-architecture');
      pass.end();
      call.destroy();
      for (const b of buffers) b.destroy();
    });
  });
});
