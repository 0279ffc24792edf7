/**
 * How K and V are stored in the KV cache: f32, or f16 halves packed two to a u32 (`pack2x16float`, so no
 * `shader-f16` is needed). Written by the rope kernel (shaders/rope.wgsl), read by shaders/attention.wgsl.
 */
export type KvDtype = 'f16' | 'f32';

export const KV_DTYPE_BYTES: Readonly<Record<KvDtype, number>> = { f16: 2, f32: 4 };
