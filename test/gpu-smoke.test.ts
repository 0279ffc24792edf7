import { describe, expect, it } from 'vitest';
import { createNodeGpu } from '../src/gpu/node.ts';

describe('Gpu (Node, Dawn)', () => {
  it('creates a device at default limits and round-trips a buffer', async () => {
    const gpu = await createNodeGpu({ forceDefaultLimits: true });
    expect(gpu.limits.maxComputeInvocationsPerWorkgroup).toBe(256);
    const data = new Uint8Array([1, 2, 3, 4, 5, 6, 7]);
    const buffer = await gpu.upload(data, 'smoke', GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    const back = new Uint8Array(await gpu.read(buffer));
    expect([...back.subarray(0, 7)]).toEqual([...data]);
    expect(back[7]).toBe(0);
    gpu.destroy();
  });

  it('reports an allocation over maxBufferSize as gpu-limits, not out-of-memory', async () => {
    const gpu = await createNodeGpu({ forceDefaultLimits: true });
    await expect(gpu.createBuffer({ size: 2 ** 40, usage: GPUBufferUsage.STORAGE })).rejects.toMatchObject({ code: 'gpu-limits' });
    gpu.destroy();
  });
});
