import { Df11Error } from '../errors.ts';
import type { ModelSpec } from '../format/model-spec.ts';
import type { Gpu } from '../gpu/gpu.ts';

/**
 * Keys and values of every layer for `maxSeq` positions, in f32 (to stay within tolerance of HF fp32).
 * One buffer per layer and kind, so each stays within one storage binding:
 * k[layer], v[layer]  (n_kv_heads, max_seq, head_dim)
 */
export class KvCache {
  private constructor(
    readonly maxSeq: number,
    readonly k: readonly GPUBuffer[],
    readonly v: readonly GPUBuffer[],
  ) {}

  static bytesPerLayer(spec: ModelSpec, maxSeq: number): number {
    return spec.numKvHeads * maxSeq * spec.headDim * 4;
  }

  static async create(gpu: Gpu, spec: ModelSpec, maxSeq: number): Promise<KvCache> {
    const bytes = KvCache.bytesPerLayer(spec, maxSeq);
    if (bytes > gpu.maxBindingSize) {
      throw new Df11Error('out-of-memory', `a KV cache layer of ${maxSeq} positions (${bytes} bytes) exceeds this device's ${gpu.maxBindingSize}-byte storage binding`);
    }
    const k: GPUBuffer[] = [];
    const v: GPUBuffer[] = [];
    try {
      for (let i = 0; i < spec.numLayers; i++) {
        k.push(await gpu.createBuffer({ label: `kv cache k${i}`, size: bytes, usage: GPUBufferUsage.STORAGE }));
        v.push(await gpu.createBuffer({ label: `kv cache v${i}`, size: bytes, usage: GPUBufferUsage.STORAGE }));
      }
    } catch (e) {
      for (const b of [...k, ...v]) b.destroy();
      throw e;
    }
    return new KvCache(maxSeq, k, v);
  }

  get bytes(): number {
    return this.k.reduce((a, b) => a + b.size, 0) * 2;
  }

  destroy(): void {
    for (const b of [...this.k, ...this.v]) b.destroy();
  }
}
