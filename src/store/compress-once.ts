/**
 * Compress once: a BF16 model becomes a stored DF11 copy (`<id>#df11`), its units encoded by an encoder pool
 * and each unit file stored as soon as it is made. From a remote directory (fetchCompressed) the BF16 bytes
 * are read unit by unit with Range requests while compressing and never stored: what is held is the units
 * in flight. Later loads read DF11 directly. An interrupted run (closed tab) resumes at unit granularity: the
 * unit files already stored are skipped, and their BF16 bytes are not fetched again.
 */
import { readJson, type ModelFiles } from '../format/byte-source.ts';
import { compressModel, type CompressProgress } from '../format/compress-model.ts';
import { unitFileName } from '../format/df11-writer.ts';
import type { UnitEncoder } from '../format/unit-encoder.ts';
import { modelIdFromUrl, type FetchModelOptions, type ModelStore } from './model-store.ts';

/** The store id of the DF11 copy of the stored model `id`. */
export function compressedId(id: string): string {
  return `${id}#df11`;
}

export interface CompressOnceOptions {
  encoder: UnitEncoder;
  onUnit?: (progress: CompressProgress) => void;
}

/**
 * Compresses the BF16 model `bf16` (remote or stored under `id`) into the store; returns the DF11 copy. A
 * stored BF16 download under `id` (what earlier versions kept) is deleted afterwards.
 */
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

export interface FetchCompressedOptions extends Pick<FetchModelOptions, 'signal' | 'accessToken' | 'onProgress' | 'onEvicted'> {
  /** Makes the encoder when a model needs compressing (closed again here). */
  encoder: () => UnitEncoder;
  onUnit?: (progress: CompressProgress) => void;
}

/**
 * The model at the directory `url`, stored: a DF11 repo is downloaded as it is (store.fetchModel); a BF16
 * repo is compressed while it downloads (storeCompressed over store.openRemote) and its DF11 copy returned,
 * then and at every later load. Callers serialize calls per model (a Web Lock), as two runs of one model
 * would encode the same units.
 */
export async function fetchCompressed(store: ModelStore, url: string, options: FetchCompressedOptions): Promise<ModelFiles> {
  const id = modelIdFromUrl(url);
  if (await store.isComplete(compressedId(id))) return store.open(compressedId(id));
  const compress = async (bf16: ModelFiles): Promise<ModelFiles> => {
    const encoder = options.encoder();
    try {
      return await storeCompressed(store, id, url, bf16, { encoder, onUnit: options.onUnit });
    } finally {
      await encoder.close();
    }
  };
  if (await store.isComplete(id)) {
    // Stored whole earlier: a DF11 repo (read from the store), or a BF16 download an earlier version kept.
    const stored = await store.fetchModel(url, options);
    return (await isDf11(stored)) ? stored : compress(stored);
  }
  const remote = await store.openRemote(url, options);
  if (await isDf11(remote.files)) return store.fetchModel(url, { ...options, files: remote.listing });
  return compress(remote.files);
}

async function isDf11(files: ModelFiles): Promise<boolean> {
  const config = await readJson<Record<string, unknown>>(files, 'config.json');
  return typeof config === 'object' && config !== null && config.dfloat11_config !== undefined;
}
