import { Df11Error } from '../errors.ts';
import { constantDeclarations } from './shader-constants.ts';
import { UniformArena } from './uniform-arena.ts';

/** WGSL sources by file name without extension ("df11_decode" for shaders/df11_decode.wgsl). */
export type ShaderSources = ReadonlyMap<string, string>;

export interface GpuOptions {
  /** WGSL sources; see shaders-browser.ts and shaders-node.ts. */
  shaders: ShaderSources;
  /** Request only the spec default limits (tests prove every kernel works there). */
  forceDefaultLimits?: boolean;
  powerPreference?: GPUPowerPreference;
  /** The `navigator.gpu` to use; defaults to globalThis.navigator.gpu. */
  gpu?: GPU;
}

/** Limits we raise above the defaults when the adapter offers more. */
const RAISED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupsPerDimension',
] as const;

/** Whitespace, comments (not `// #include` lines) and WGSL directives at the start of a shader file. */
const LEADING_DIRECTIVES = /^(?:\s+|\/\/(?! #include)[^\n]*|(?:enable|requires|diagnostic)\b[^;]*;)*/;

const OPTIONAL_FEATURES: GPUFeatureName[] = ['subgroups', 'timestamp-query'];

/** SwiftShader and other CPU implementations of WebGPU. */
export function isCpuAdapter(info: GPUAdapterInfo): boolean {
  return /swiftshader|llvmpipe|cpu/i.test(`${info.vendor} ${info.architecture} ${info.device} ${info.description}`);
}

/**
 * A WebGPU device with what every kernel needs: negotiated limits, shader modules built from
 * shaders/*.wgsl (with `// #include name` lines resolved), allocations that fail with typed errors,
 * and device loss surfaced as a typed event. The same code runs in browsers and in Node (`webgpu`).
 */
export class Gpu {
  readonly device: GPUDevice;
  readonly adapterInfo: GPUAdapterInfo;
  readonly features: { subgroups: boolean; timestampQuery: boolean };
  /** Resolves when the device is lost (never rejects). */
  readonly lost: Promise<Df11Error>;
  /** The params blocks of every bound kernel (src/gpu/kernels/kernel.ts), written by `submit`. */
  readonly uniforms: UniformArena = new UniformArena(this);
  private readonly shaders: ShaderSources;
  private readonly modules = new Map<string, GPUShaderModule>();
  /** Compute pipelines by shader, entry point and constants: every generator on this device shares them. */
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  private isLost = false;

  private constructor(device: GPUDevice, info: GPUAdapterInfo, shaders: ShaderSources) {
    this.device = device;
    this.adapterInfo = info;
    this.shaders = shaders;
    this.features = {
      subgroups: device.features.has('subgroups'),
      timestampQuery: device.features.has('timestamp-query'),
    };
    this.lost = device.lost.then((info) => {
      this.isLost = true;
      return new Df11Error('device-lost', `GPU device lost (${info.reason}): ${info.message}`);
    });
  }

  static async create(options: GpuOptions): Promise<Gpu> {
    const gpu = options.gpu ?? (globalThis.navigator as Navigator | undefined)?.gpu;
    if (!gpu) throw new Df11Error('no-webgpu', 'WebGPU is not available in this environment (navigator.gpu is missing).');
    const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
    if (!adapter) throw new Df11Error('no-webgpu', 'WebGPU is available but no GPU adapter was found.');
    const requiredLimits: Record<string, number> = {};
    if (!options.forceDefaultLimits) {
      for (const name of RAISED_LIMITS) requiredLimits[name] = adapter.limits[name];
    }
    const requiredFeatures = options.forceDefaultLimits ? [] : OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
    } catch (cause) {
      throw new Df11Error('no-webgpu', `Could not create a WebGPU device: ${String(cause)}`, { cause });
    }
    return new Gpu(device, adapter.info, options.shaders);
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  /** Largest buffer a single storage binding may cover. */
  get maxBindingSize(): number {
    return Math.min(this.device.limits.maxStorageBufferBindingSize, this.device.limits.maxBufferSize);
  }

  /**
   * Shader module for shaders/<name>.wgsl, with `// #include other` lines replaced by shaders/other.wgsl and
   * each file's shared constants (shader-constants.ts) declared at its top.
   */
  shaderModule(name: string): GPUShaderModule {
    let module = this.modules.get(name);
    if (!module) {
      module = this.device.createShaderModule({ label: name, code: this.shaderSource(name) });
      this.modules.set(name, module);
    }
    return module;
  }

  /** Source of shaders/<name>.wgsl with includes resolved (e.g. for uniformLayout in uniforms.ts). */
  shaderSource(name: string): string {
    return this.shaderCode(name, new Set());
  }

  private shaderCode(name: string, seen: Set<string>): string {
    const code = this.shaders.get(name);
    if (code === undefined) throw new Df11Error('internal', `shader ${name}.wgsl not found`);
    seen.add(name);
    // the shared constants go after the file's leading comments and directives (`enable subgroups;` must precede every declaration)
    const head = LEADING_DIRECTIVES.exec(code)![0];
    return head + constantDeclarations(name) + code.slice(head.length).replace(/^\/\/ #include (\w+)\s*$/gm, (_, dep: string) =>
      seen.has(dep) ? '' : this.shaderCode(dep, seen),
    );
  }

  /**
   * The compute pipeline of a shader, entry point and constants: created once per device (compiling is the
   * slow part of loading a model on a CPU adapter), then shared; validation failures become typed errors.
   */
  computePipeline(shader: string, constants?: Record<string, number>, entryPoint = 'main'): Promise<GPUComputePipeline> {
    const key = JSON.stringify([shader, entryPoint, Object.entries(constants ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))]);
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      pipeline = this.createPipeline(shader, constants, entryPoint);
      this.pipelines.set(key, pipeline);
      pipeline.catch(() => this.pipelines.delete(key)); // a failure is not cached
    }
    return pipeline;
  }

  private async createPipeline(shader: string, constants: Record<string, number> | undefined, entryPoint: string): Promise<GPUComputePipeline> {
    this.device.pushErrorScope('validation');
    const pipeline = await this.device.createComputePipelineAsync({
      label: shader,
      layout: 'auto',
      compute: { module: this.shaderModule(shader), entryPoint, constants },
    }).catch((cause: unknown) => {
      throw new Df11Error('gpu-validation', `pipeline ${shader}: ${String(cause)}`, { cause });
    });
    const error = await this.device.popErrorScope();
    if (error) throw new Df11Error('gpu-validation', `pipeline ${shader}: ${error.message}`);
    return pipeline;
  }

  /** Allocate a buffer; sizes over the limits (gpu-limits), out-of-memory and invalid sizes are typed errors, not silent invalid buffers. */
  async createBuffer(descriptor: GPUBufferDescriptor): Promise<GPUBuffer> {
    this.assertAlive();
    if (descriptor.size > this.device.limits.maxBufferSize) {
      throw new Df11Error('gpu-limits', `buffer ${descriptor.label ?? ''} of ${descriptor.size} bytes exceeds maxBufferSize ${this.device.limits.maxBufferSize}`);
    }
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    const buffer = this.device.createBuffer(descriptor);
    const validation = await this.device.popErrorScope();
    const oom = await this.device.popErrorScope();
    if (oom || validation) {
      buffer.destroy();
      const code = oom ? 'out-of-memory' : 'gpu-validation';
      throw new Df11Error(code, `could not allocate ${descriptor.size} bytes for ${descriptor.label ?? 'a buffer'}: ${(oom ?? validation)!.message}`);
    }
    return buffer;
  }

  /** A storage buffer holding `data` (padded to 4 bytes). */
  async upload(data: ArrayBufferView, label: string, usage = GPUBufferUsage.STORAGE): Promise<GPUBuffer> {
    const size = Math.max(4, Math.ceil(data.byteLength / 4) * 4);
    const buffer = await this.createBuffer({ label, size, usage: usage | GPUBufferUsage.COPY_DST });
    this.writeBuffer(buffer, 0, data);
    return buffer;
  }

  /** queue.writeBuffer that accepts any length (pads the tail to 4 bytes). */
  writeBuffer(buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const whole = bytes.byteLength & ~3;
    if (whole > 0) this.device.queue.writeBuffer(buffer, offset, bytes, 0, whole);
    if (whole < bytes.byteLength) {
      const tail = new Uint8Array(4);
      tail.set(bytes.subarray(whole));
      this.device.queue.writeBuffer(buffer, offset + whole, tail);
    }
  }

  /**
   * Submit command buffers after writing the kernel params they were recorded with (the uniform arena):
   * every submit of commands that contain bound kernels goes through here.
   */
  submit(commands: GPUCommandBuffer[]): void {
    this.uniforms.flush();
    this.device.queue.submit(commands);
  }

  /** Copy `size` bytes of `buffer` from `offset` back to the CPU. */
  async read(buffer: GPUBuffer, offset = 0, size = buffer.size - offset): Promise<ArrayBuffer> {
    this.assertAlive();
    const staging = await this.createBuffer({ label: 'readback', size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(buffer, offset, staging, 0, size);
    this.submit([encoder.finish()]);
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (cause) {
      this.assertAlive();
      throw new Df11Error('gpu-validation', `readback failed: ${String(cause)}`, { cause });
    }
    const copy = staging.getMappedRange().slice(0);
    staging.destroy();
    return copy;
  }

  assertAlive(): void {
    if (this.isLost) throw new Df11Error('device-lost', 'the GPU device was lost; reload the model to continue');
  }

  destroy(): void {
    this.device.destroy();
  }
}
