/**
 * Compress once: a BF16 model in the store becomes a stored DF11 copy (`<id>#df11`), its units encoded by
 * an encoder pool and each unit file stored as soon as it is made; then the BF16 download is deleted, so
 * later loads read DF11 directly and the BF16 bytes are not kept. An interrupted run (closed tab) resumes
 * at unit granularity: the unit files already stored are skipped.
 */
import type { ModelFiles } from '../format/byte-source.ts';
import { compressModel, type CompressProgress } from '../format/compress-model.ts';
import { unitFileName } from '../format/df11-writer.ts';
import type { UnitEncoder } from '../format/unit-encoder.ts';
import type { ModelStore } from './model-store.ts';

/** The store id of the DF11 copy of the stored model `id`. */
export function compressedId(id: string): string {
  return `${id}#df11`;
}

export interface CompressOnceOptions {
  encoder: UnitEncoder;
  onUnit?: (progress: CompressProgress) => void;
}

/** Compresses the stored BF16 model `id` (its files: `bf16`) into the store; returns the DF11 copy. */
export async function storeCompressed(store: ModelStore, id: string, sourceUrl: string, bf16: ModelFiles, options: CompressOnceOptions): Promise<ModelFiles> {
  const df11Id = compressedId(id);
  const writer = await store.writer(df11Id, sourceUrl);
  await compressModel(bf16, writer, {
    encoder: options.encoder,
    onUnit: options.onUnit,
    skipUnit: (unit) => writer.has(unitFileName(unit)),
  });
  await writer.complete();
  await store.delete(id);
  return store.open(df11Id);
}
