import { isCpuAdapter, type Gpu } from '../gpu/gpu.ts';
import type { KvDtype } from '../gpu/kernels/kv-dtype.ts';
import type { MemoryLayout } from './layout.ts';

/**
 * Keys and values of every attention layer for `maxSeq` positions, in f32 or in f16 (halves packed two to
 * a u32). One buffer per layer and kind, so each stays within one storage binding (none for a Gated
 * DeltaNet layer, whose state is fixed-size: see Forward):
 * k[layer], v[layer]  (n_kv_heads, max_seq, head_dim)
 */
export class KvCache {
  private constructor(
    readonly maxSeq: number,
    readonly dtype: KvDtype,
    readonly k: readonly (GPUBuffer | undefined)[],
    readonly v: readonly (GPUBuffer | undefined)[],
  ) {}

  /** The K and V buffers of every layer, as `layout` sizes them (kv.k.<i>, kv.v.<i>). */
  static async create(gpu: Gpu, layout: MemoryLayout): Promise<KvCache> {
    const k: (GPUBuffer | undefined)[] = [];
    const v: (GPUBuffer | undefined)[] = [];
    try {
      for (let i = 0; i < layout.spec.numLayers; i++) {
        if (layout.spec.layers[i]!.mixer !== 'attention') {
          k.push(undefined);
          v.push(undefined);
          continue;
        }
        k.push(await gpu.createBuffer({ label: `kv cache k${i}`, size: layout.buffer(`kv.k.${i}`).bytes, usage: GPUBufferUsage.STORAGE }));
        v.push(await gpu.createBuffer({ label: `kv cache v${i}`, size: layout.buffer(`kv.v.${i}`).bytes, usage: GPUBufferUsage.STORAGE }));
      }
    } catch (e) {
      for (const b of [...k, ...v]) b?.destroy();
      throw e;
    }
    return new KvCache(layout.options.contextLength, layout.kvDtype, k, v);
  }

  get bytes(): number {
    return this.k.reduce((a, b) => a + (b?.size ?? 0), 0) * 2;
  }

  destroy(): void {
    for (const b of [...this.k, ...this.v]) b?.destroy();
  }
}

/**
 * f16 on GPUs (half the bytes, so twice the context; logits stay within the tolerance stated in
 * test/conformance-kv-f16.test.ts); f32 on CPU adapters, where memory is not the limit and the conformance
 * tests compare with HF fp32 at their tightest.
 */
export function defaultKvDtype(gpu: Gpu): KvDtype {
  return isCpuAdapter(gpu.adapterInfo) ? 'f32' : 'f16';
}
