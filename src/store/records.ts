/**
 * The IndexedDB records of the model store, on idb-keyval custom stores (one database per object store,
 * names versioned so a layout change can live beside the old one):
 *
 *   df11-manifests-v1 / manifests   key: model id                  value: StoredManifest
 *   df11-chunks-v1    / chunks      key: [model id, file, index]   value: ChunkRecord
 *
 * Array keys sort element by element, so every chunk of a file (or of a model) is one key range.
 * Storage failures become typed errors: QuotaExceededError → 'quota-exceeded', anything else → 'storage'.
 */
import { createStore, del, get, promisifyRequest, set, type UseStore } from 'idb-keyval';
import { Df11Error } from '../errors.ts';
import type { Sha256State } from './sha256.ts';

export const MANIFEST_DB = 'df11-manifests-v1';
export const CHUNK_DB = 'df11-chunks-v1';

/** One stored file of a model. It is complete once `sha256` is set. */
export interface StoredFile {
  name: string;
  size: number;
  /** SHA-256 (hex) announced by the source (listing or X-Linked-Etag); null when the source gave none. */
  expectedSha256: string | null;
  /** SHA-256 (hex) of the stored bytes, set when the whole file is stored and verified. */
  sha256: string | null;
  /** SHA-256 of every chunk, 32 bytes each in chunk order; set with `sha256`. */
  chunkHashes: ArrayBuffer | null;
}

export interface StoredManifest {
  version: 1;
  id: string;
  /** Directory URL the files were fetched from (ends with '/'); repairs fetch from here. */
  sourceUrl: string;
  /** Bytes per chunk record (a multiple of 64); the last chunk of a file may be shorter. */
  chunkBytes: number;
  files: StoredFile[];
  /** 'complete' is written last, after every file is verified. */
  state: 'downloading' | 'complete';
  updatedAt: number;
}

export interface ChunkRecord {
  /** Bytes [index * chunkBytes, min((index + 1) * chunkBytes, size)) of the file. */
  data: ArrayBuffer;
  /** SHA-256 of `data`.  (32) */
  sha256: ArrayBuffer;
  /** File-hash state after this chunk, to resume the hash; null for a file's last chunk. */
  hashAfter: Sha256State | null;
}

type ChunkKey = [string, string, number];

export class Records {
  private constructor(
    private readonly manifests: UseStore,
    private readonly chunks: UseStore,
  ) {}

  static open(): Records {
    if (typeof indexedDB === 'undefined') throw new Df11Error('storage', 'IndexedDB is not available here');
    return new Records(createStore(MANIFEST_DB, 'manifests'), createStore(CHUNK_DB, 'chunks'));
  }

  getManifest(id: string): Promise<StoredManifest | undefined> {
    return guard(`reading the manifest of ${id}`, () => get<StoredManifest>(id, this.manifests));
  }

  putManifest(manifest: StoredManifest): Promise<void> {
    return guard(`writing the manifest of ${manifest.id}`, () => set(manifest.id, manifest, this.manifests));
  }

  allManifests(): Promise<StoredManifest[]> {
    return guard('listing manifests', () =>
      this.manifests('readonly', (s) => promisifyRequest(s.getAll() as IDBRequest<StoredManifest[]>)),
    );
  }

  deleteManifest(id: string): Promise<void> {
    return guard(`deleting the manifest of ${id}`, () => del(id, this.manifests));
  }

  getChunk(id: string, file: string, index: number): Promise<ChunkRecord | undefined> {
    return guard(`reading ${file} chunk ${index}`, () => get<ChunkRecord>(chunkKey(id, file, index), this.chunks));
  }

  putChunk(id: string, file: string, index: number, record: ChunkRecord): Promise<void> {
    return guard(`storing ${file} chunk ${index}`, () => set(chunkKey(id, file, index), record, this.chunks));
  }

  /** Indices of the stored chunks of one file, ascending. */
  chunkIndices(id: string, file: string): Promise<number[]> {
    return guard(`listing the chunks of ${file}`, async () => {
      const keys = await this.chunks('readonly', (s) => promisifyRequest(s.getAllKeys(fileRange(id, file))));
      return (keys as ChunkKey[]).map((k) => k[2]);
    });
  }

  deleteFileChunks(id: string, file: string): Promise<void> {
    return guard(`deleting the chunks of ${file}`, () =>
      this.chunks('readwrite', (s) => {
        s.delete(fileRange(id, file));
        return promisifyRequest(s.transaction);
      }),
    );
  }

  deleteModelChunks(id: string): Promise<void> {
    return guard(`deleting the chunks of ${id}`, () =>
      this.chunks('readwrite', (s) => {
        s.delete(modelRange(id));
        return promisifyRequest(s.transaction);
      }),
    );
  }
}

function chunkKey(id: string, file: string, index: number): ChunkKey {
  return [id, file, index];
}

function fileRange(id: string, file: string): IDBKeyRange {
  return IDBKeyRange.bound([id, file, 0], [id, file, Number.MAX_SAFE_INTEGER]);
}

/** Every key [id, …]: arrays sort after strings, so [id, []] is above every [id, file, n]. */
function modelRange(id: string): IDBKeyRange {
  return IDBKeyRange.bound([id], [id, []]);
}

function isQuotaError(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { name?: unknown }).name === 'QuotaExceededError';
}

async function guard<T>(what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    if (e instanceof Df11Error) throw e;
    if (isQuotaError(e)) {
      throw new Df11Error('quota-exceeded', `storage quota exceeded while ${what}; the download can resume once space is freed`, {
        cause: e,
      });
    }
    throw new Df11Error('storage', `IndexedDB failed while ${what}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
}
