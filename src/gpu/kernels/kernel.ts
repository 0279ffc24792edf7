/**
 * What every forward kernel wrapper shares: a uniform `Params` struct described once in TypeScript
 * (binding 0), storage buffers bound once at setup (bindings 1..n), and per-dispatch parameter writes
 * that only touch the GPU when a value changed.
 *
 * Convention for the WGSL side: `struct Params` holds only 4-byte scalars (u32 or f32) in the same order
 * as the TypeScript layout; test/kernels-*.test.ts checks every kernel's struct against its layout.
 */
import type { Gpu } from '../gpu.ts';

export type ScalarType = 'u32' | 'f32';

/** The layout of a WGSL uniform struct of 4-byte scalars, in declaration order. */
export class UniformLayout<F extends string> {
  readonly names: readonly F[];
  /** Bytes, rounded up to 16 (uniform buffers bind in 16-byte units). */
  readonly size: number;

  constructor(readonly fields: Readonly<Record<F, ScalarType>>) {
    this.names = Object.keys(fields) as F[];
    this.size = Math.max(16, Math.ceil((this.names.length * 4) / 16) * 16);
  }

  pack(values: Readonly<Record<F, number>>, into = new ArrayBuffer(this.size)): ArrayBuffer {
    const u32 = new Uint32Array(into);
    const f32 = new Float32Array(into);
    this.names.forEach((name, i) => {
      const v = values[name];
      if (this.fields[name] === 'f32') f32[i] = v;
      else {
        if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`param ${name} = ${v} is not a u32`);
        u32[i] = v;
      }
    });
    return into;
  }
}

export type Params<L> = L extends UniformLayout<infer F> ? Readonly<Record<F, number>> : never;

/** A storage binding: a whole buffer, or a 256-byte-aligned range of one. */
export type StorageBinding = GPUBuffer | { buffer: GPUBuffer; offset: number; size: number };

/**
 * One pipeline with its buffers bound: a uniform buffer for its Params and a bind group, made once.
 * `encode` writes the params (only if they changed since the last call) and records the dispatch.
 */
export class BoundKernel<F extends string> {
  private readonly uniform: GPUBuffer;
  private readonly bindGroup: GPUBindGroup;
  private last = new Uint32Array(0);

  private constructor(
    private readonly gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    private readonly layout: UniformLayout<F>,
    uniform: GPUBuffer,
    storage: readonly StorageBinding[],
  ) {
    this.uniform = uniform;
    this.bindGroup = gpu.device.createBindGroup({
      label: pipeline.label,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: uniform } },
        ...storage.map((b, i) => ({ binding: i + 1, resource: 'buffer' in b ? b : { buffer: b } })),
      ],
    });
  }

  static async create<F extends string>(
    gpu: Gpu,
    pipeline: GPUComputePipeline,
    layout: UniformLayout<F>,
    storage: readonly StorageBinding[],
  ): Promise<BoundKernel<F>> {
    const uniform = await gpu.createBuffer({
      label: `${pipeline.label} params`,
      size: layout.size,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    return new BoundKernel(gpu, pipeline, layout, uniform, storage);
  }

  /**
   * Record one dispatch. Params are written through the queue, so one BoundKernel must be encoded at most
   * once per submitted command buffer (each call site in the forward owns its own BoundKernel).
   */
  encode(pass: GPUComputePassEncoder, params: Readonly<Record<F, number>>, workgroups: readonly [number, number, number]): void {
    const packed = new Uint32Array(this.layout.pack(params));
    if (!sameWords(packed, this.last)) {
      this.gpu.device.queue.writeBuffer(this.uniform, 0, packed);
      this.last = packed;
    }
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    pass.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);
  }

  destroy(): void {
    this.uniform.destroy();
  }
}

function sameWords(a: Uint32Array, b: Uint32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Max workgroups per grid dimension at the default limits. */
export const MAX_GROUPS_PER_DIM = 65535;

/**
 * Spread `groups` workgroups over x and y (shaders rebuild the linear index as wid.x + wid.y * nwg.x
 * and skip indices past the end).
 */
export function grid(groups: number): [number, number] {
  if (groups <= MAX_GROUPS_PER_DIM) return [Math.max(1, groups), 1];
  return [MAX_GROUPS_PER_DIM, Math.ceil(groups / MAX_GROUPS_PER_DIM)];
}
