/**
 * What every forward kernel wrapper shares: a uniform `Params` struct whose layout is read from the
 * shader's own declaration (src/gpu/uniforms.ts: values are packed by member name, a missing or unknown
 * name throws), storage buffers bound once at setup by their names in the shader (src/gpu/bindings.ts: the
 * names are checked when the pipeline is created), and per-dispatch parameter writes that only touch the
 * GPU when a value changed.
 */
import { Df11Error } from '../../errors.ts';
import { bindGroupEntries, shaderBindings, type ShaderBindings } from '../bindings.ts';
import type { Gpu } from '../gpu.ts';
import { UNIFORM_SLOT_BYTES, type UniformSlot } from '../uniform-arena.ts';
import { packUniformInto, uniformLayout, type UniformLayout } from '../uniforms.ts';

export type Params = Readonly<Record<string, number>>;

/** A compute pipeline of shaders/<shader>.wgsl with the layout of its `struct Params` and its storage buffers N. */
export interface KernelPipeline<N extends string = string> {
  pipeline: GPUComputePipeline;
  layout: UniformLayout;
  bindings: ShaderBindings<N>;
}

/** `storage`: the names of every storage buffer the shader declares (a wrong or missing name throws Df11Error before compiling). */
export async function kernelPipeline<N extends string>(gpu: Gpu, shader: string, storage: readonly N[], constants?: Record<string, number>): Promise<KernelPipeline<N>> {
  const source = gpu.shaderSource(shader);
  const layout = uniformLayout(source, 'Params');
  const bindings = shaderBindings(shader, source, storage);
  return { pipeline: await gpu.computePipeline(shader, constants), layout, bindings };
}

/** A storage binding: a whole buffer, or a 256-byte-aligned range of one. */
export type StorageBinding = GPUBuffer | { buffer: GPUBuffer; offset: number; size: number };

/**
 * One pipeline with its buffers bound: a slot of the device's uniform arena for its Params and a bind
 * group, made once. `encode` packs the params into the slot (writing and marking for Gpu.submit only the
 * values that changed) and records the dispatch.
 */
export class BoundKernel {
  private readonly bindGroup: GPUBindGroup;
  /** The device's most workgroups per grid dimension (the negotiated maxComputeWorkgroupsPerDimension). */
  readonly maxGroupsPerDim: number;

  private constructor(
    gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    private readonly layout: UniformLayout,
    private readonly uniform: UniformSlot,
    entries: GPUBindGroupEntry[],
  ) {
    this.maxGroupsPerDim = gpu.limits.maxComputeWorkgroupsPerDimension;
    this.bindGroup = gpu.device.createBindGroup({ label: pipeline.label, layout: pipeline.getBindGroupLayout(0), entries });
  }

  /** `storage`: a buffer (or range) for each storage buffer the shader declares, by its name there. */
  static async create<N extends string>(
    gpu: Gpu,
    { pipeline, layout, bindings }: KernelPipeline<N>,
    storage: Readonly<Record<N, StorageBinding>>,
  ): Promise<BoundKernel> {
    const resources = Object.fromEntries(
      (Object.entries(storage) as Array<[N, StorageBinding]>).map(([name, b]) => [name, 'buffer' in b ? b : { buffer: b }]),
    ) as Record<N, GPUBufferBinding>;
    if (layout.size > UNIFORM_SLOT_BYTES) throw new Df11Error('internal', `${pipeline.label}: Params of ${layout.size} bytes exceed a uniform slot`);
    const uniform = await gpu.uniforms.slot(pipeline.label);
    try {
      const params = { buffer: uniform.buffer, offset: uniform.offset, size: layout.size };
      return new BoundKernel(gpu, pipeline, layout, uniform, bindGroupEntries(bindings, params, resources));
    } catch (e) {
      uniform.release();
      throw e;
    }
  }

  /**
   * Spread `groups` workgroups over x and y (shaders rebuild the linear index as wid.x + wid.y * nwg.x
   * and skip indices past the end).
   */
  grid(groups: number): [number, number] {
    return spreadGroups(groups, this.maxGroupsPerDim);
  }

  /**
   * Record one dispatch (gpu-limits if a grid dimension exceeds the device's limit). Params reach the GPU
   * when the commands are submitted (Gpu.submit), so one BoundKernel must be encoded at most once per
   * submitted command buffer (each call site in the forward owns its own BoundKernel).
   */
  encode(pass: GPUComputePassEncoder, params: Params, workgroups: readonly [number, number, number]): void {
    const [x, y, z] = workgroups;
    if (x > this.maxGroupsPerDim || y > this.maxGroupsPerDim || z > this.maxGroupsPerDim) {
      throw new Df11Error('gpu-limits', `${this.pipeline.label}: dispatch of (${workgroups.join(', ')}) workgroups exceeds this device's ${this.maxGroupsPerDim} per dimension`);
    }
    if (packUniformInto(this.layout, params, this.uniform.view, this.uniform.offset)) this.uniform.touch();
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    pass.dispatchWorkgroups(x, y, z);
  }

  destroy(): void {
    this.uniform.release();
  }
}

/** `groups` workgroups as an (x, y) grid of at most `maxPerDim` along x (y may exceed it: the dispatch then fails with gpu-limits). */
export function spreadGroups(groups: number, maxPerDim: number): [number, number] {
  if (groups <= maxPerDim) return [Math.max(1, groups), 1];
  return [maxPerDim, Math.ceil(groups / maxPerDim)];
}
