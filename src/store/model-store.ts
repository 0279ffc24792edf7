/**
 * The model store: downloads a model directory into IndexedDB once and hands it back as `ModelFiles`.
 *
 *   const store = openModelStore();
 *   const files = await store.fetchModel('/models/stories-15m-df11/', { onProgress, signal });
 *   // or hfResolveUrl('DFloat11/Llama-3.1-8B-Instruct-DF11') for a Hugging Face repo
 *   const weights = await openModel(files);          // reads ranges from IndexedDB chunk by chunk
 *   await store.list(); await store.size(id); await store.delete(id); await store.verify(id);
 *
 * fetchModel: a complete stored model is returned without touching the network. Otherwise the file list
 * comes from the directory (listing.ts), storage space is checked with navigator.storage.estimate()
 * (Df11Error('quota-exceeded') if it cannot fit) and persistence requested, then up to `concurrency`
 * files stream into chunk records at once (download.ts), each resuming after its last verified chunk.
 * Network failures and hash mismatches are retried `retries` times per file; after that (or on quota
 * or cancel) the first error is thrown and everything stored so far stays for the next call to resume.
 * Each file is marked verified in the manifest as it completes; the manifest is marked complete last.
 *
 * Errors: Df11Error 'network' | 'access-denied' (HTTP 401/403) | 'integrity' | 'quota-exceeded' | 'storage' | 'aborted' | 'config' | 'bad-request'.
 */
import { Df11Error, isDf11Error } from '../errors.ts';
import type { ModelFiles } from '../format/byte-source.ts';
import { withAccessToken } from './access-token.ts';
import { chunkCount, chunkLength, downloadFile } from './download.ts';
import { directoryUrl, listRemoteFiles, mapLimited, modelIdFromUrl, type FetchFn, type RemoteFile } from './listing.ts';
import { modelWriter, type StoredModelWriter } from './model-writer.ts';
import { ProgressTracker, type ProgressListener } from './progress.ts';
import { Records, type StoredFile, type StoredManifest } from './records.ts';
import { remoteModelFiles } from './remote-files.ts';
import { ChunkReader, ReadMeter, storedModelFiles, verifyStoredModel } from './stored-files.ts';

export { hfResolveUrl, modelIdFromUrl, directoryUrl, type RemoteFile } from './listing.ts';
export type { DownloadProgress, ProgressListener } from './progress.ts';
export { ReadMeter } from './stored-files.ts';
export type { StoredModelWriter } from './model-writer.ts';

/** 1 MiB: a resume re-downloads at most one chunk per file in flight; a multiple of 64 (SHA-256 blocks). */
export const DEFAULT_CHUNK_BYTES = 1 << 20;

export interface FetchModelOptions {
  onProgress?: ProgressListener;
  signal?: AbortSignal;
  /** Files downloading at once (default 3). */
  concurrency?: number;
  /** Further attempts per file after a network failure or hash mismatch (default 3). */
  retries?: number;
  /** Chunk size of a new download (a positive multiple of 64; default 1 MiB). */
  chunkBytes?: number;
  /**
   * Access token for gated or private repos (a Hugging Face token): sent as `Authorization: Bearer` to the
   * model directory's origin only, never to a redirect target on another origin (access-token.ts).
   */
  accessToken?: string;
  /** The file list, when the caller already has it (skips the directory listing). */
  files?: RemoteFile[];
  /**
   * Called when a stored model has lost chunk records (evicted under storage pressure, cleared by hand):
   * before the model is returned, those chunks — and only those — are downloaded again.
   */
  onEvicted?: (evicted: EvictedChunks) => void;
}

export interface EvictedChunks {
  /** Files with chunks gone, and how many chunks and bytes are being downloaded again. */
  files: string[];
  chunks: number;
  bytes: number;
}

export interface StoredModelInfo {
  id: string;
  sourceUrl: string;
  state: 'downloading' | 'complete';
  /** Bytes of the complete model. */
  bytesTotal: number;
  filesComplete: number;
  filesTotal: number;
}

export interface RemoteModel {
  /** The directory's files, read in place: each read is one HTTP Range request (src/store/remote-files.ts). */
  files: ModelFiles;
  /** What the directory holds (pass it to fetchModel as `files` to skip listing again). */
  listing: RemoteFile[];
}

export interface ModelStore {
  /** Downloads or resumes, verifies, and returns the stored model. */
  fetchModel(url: string, options?: FetchModelOptions): Promise<ModelFiles>;
  /**
   * The remote directory `url` without storing it: listed (unless `files` is given), then read by Range
   * requests through this store's fetch, with the access token sent as fetchModel sends it.
   */
  openRemote(url: string, options?: Pick<FetchModelOptions, 'signal' | 'accessToken' | 'files'>): Promise<RemoteModel>;
  /** A complete stored model by id (no network unless a damaged chunk must be refetched). */
  open(id: string): Promise<ModelFiles>;
  /** Whether a model is stored completely. */
  isComplete(id: string): Promise<boolean>;
  /**
   * Writes a model made here (a DF11 copy compressed in this browser) file by file; files written by an
   * interrupted earlier call are kept (`writer.has`). Read it back with `open(id)` after `complete()`.
   */
  writer(id: string, sourceUrl: string): Promise<StoredModelWriter>;
  list(): Promise<StoredModelInfo[]>;
  /** Bytes stored for a model (complete or not); 0 if unknown. */
  size(id: string): Promise<number>;
  delete(id: string): Promise<void>;
  /** Reads every chunk of a complete model, refetching damaged ones; returns how many were refetched. */
  verify(id: string): Promise<number>;
  /** Bytes held by this store's readers (outputs being assembled + chunks), with the peak. */
  readonly meter: ReadMeter;
}

export interface ModelStoreOptions {
  /** Defaults to the global fetch. */
  fetch?: FetchFn;
  /**
   * Web Locks (default navigator.locks where it exists): fetchModel holds a lock per model, so two tabs
   * (or two stores) never download the same model at once — the second waits and reuses the first's.
   */
  locks?: Pick<LockManager, 'request'>;
}

/** Runs `task` holding the lock `name`, where there is a lock manager. */
function withLock<T>(locks: Pick<LockManager, 'request'> | undefined, name: string, task: () => Promise<T>): Promise<T> {
  return locks ? (locks.request(name, task) as Promise<T>) : task();
}

export function openModelStore(options: ModelStoreOptions = {}): ModelStore {
  const records = Records.open();
  const fetchFn: FetchFn = options.fetch ?? ((input, init) => fetch(input, init));
  const meter = new ReadMeter();
  const locks = options.locks ?? globalThis.navigator?.locks;
  const filesOf = (manifest: StoredManifest): ModelFiles => storedModelFiles(new ChunkReader(manifest, records, fetchFn, meter), manifest);
  /** The store's fetch, carrying `accessToken` to the directory's own origin only. */
  const fetchFor = (dirUrl: string, accessToken: string | undefined): FetchFn =>
    accessToken ? withAccessToken(fetchFn, accessToken, new URL(dirUrl).origin) : fetchFn;

  const completeManifest = async (id: string): Promise<StoredManifest> => {
    const manifest = await records.getManifest(id);
    if (!manifest) throw new Df11Error('not-loaded', `no stored model '${id}'`);
    if (manifest.state !== 'complete') throw new Df11Error('not-loaded', `stored model '${id}' is not completely downloaded`);
    return manifest;
  };

  return {
    meter,

    async fetchModel(url, opts = {}) {
      const dirUrl = directoryUrl(url);
      const id = modelIdFromUrl(dirUrl);
      const fetchHere = fetchFor(dirUrl, opts.accessToken);
      return withLock(locks, `df11-model:${id}`, async () => {
        const existing = await records.getManifest(id);
        if (existing?.state === 'complete') {
          await restoreEvicted(existing, new ChunkReader(existing, records, fetchHere, meter), records, opts.onEvicted);
          return filesOf(existing);
        }
        const manifest = existing ?? (await newManifest(id, dirUrl, opts, fetchHere));
        if (!existing) await records.putManifest(manifest);
        await download(manifest, records, fetchHere, opts);
        manifest.state = 'complete';
        manifest.updatedAt = Date.now();
        await records.putManifest(manifest);
        return filesOf(manifest);
      });
    },

    async openRemote(url, opts = {}) {
      const dirUrl = directoryUrl(url);
      const fetchHere = fetchFor(dirUrl, opts.accessToken);
      const listing = opts.files ?? (await listRemoteFiles(dirUrl, fetchHere, opts.signal));
      return { listing, files: remoteModelFiles(dirUrl, listing, fetchHere, { signal: opts.signal }) };
    },

    async open(id) {
      return filesOf(await completeManifest(id));
    },

    async isComplete(id) {
      return (await records.getManifest(id))?.state === 'complete';
    },

    writer: (id, sourceUrl) => modelWriter(records, id, sourceUrl, DEFAULT_CHUNK_BYTES),

    async list() {
      return (await records.allManifests()).map((m) => ({
        id: m.id,
        sourceUrl: m.sourceUrl,
        state: m.state,
        bytesTotal: m.files.reduce((sum, f) => sum + f.size, 0),
        filesComplete: m.files.filter((f) => f.sha256 !== null).length,
        filesTotal: m.files.length,
      }));
    },

    async size(id) {
      const manifest = await records.getManifest(id);
      if (!manifest) return 0;
      let total = 0;
      for (const file of manifest.files) total += await storedBytes(records, manifest, file);
      return total;
    },

    async delete(id) {
      const manifest = await records.getManifest(id);
      if (!manifest) return;
      // Not complete first, so an interrupted delete never leaves a "complete" model with chunks missing.
      await records.putManifest({ ...manifest, state: 'downloading', updatedAt: Date.now() });
      await records.deleteModelChunks(id);
      await records.deleteManifest(id);
    },

    async verify(id) {
      const manifest = await completeManifest(id);
      return verifyStoredModel(new ChunkReader(manifest, records, fetchFn, meter), manifest);
    },
  };
}

async function newManifest(id: string, dirUrl: string, opts: FetchModelOptions, fetchFn: FetchFn): Promise<StoredManifest> {
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0 || chunkBytes % 64 !== 0) {
    throw new Df11Error('bad-request', `chunkBytes ${chunkBytes} must be a positive multiple of 64`);
  }
  const listing = opts.files ?? (await listRemoteFiles(dirUrl, fetchFn, opts.signal));
  return {
    version: 1,
    id,
    sourceUrl: dirUrl,
    chunkBytes,
    files: listing.map((f) => ({ name: f.name, size: f.size, expectedSha256: f.sha256, sha256: null, chunkHashes: null })),
    state: 'downloading',
    updatedAt: Date.now(),
  };
}

/**
 * Eviction check when a complete model is loaded: every chunk record the manifest implies must be there.
 * Missing ones are refetched now (Range requests for just those chunks, checked against the hashes
 * recorded at download) instead of failing, or stalling, a later read. Returns how many were refetched.
 */
async function restoreEvicted(manifest: StoredManifest, reader: ChunkReader, records: Records, onEvicted: FetchModelOptions['onEvicted']): Promise<number> {
  const missing: Array<[StoredFile, number]> = [];
  for (const file of manifest.files) {
    const present = new Set(await records.chunkIndices(manifest.id, file.name));
    const n = chunkCount(file.size, manifest.chunkBytes);
    if (present.size === n) continue;
    for (let i = 0; i < n; i++) if (!present.has(i)) missing.push([file, i]);
  }
  if (missing.length === 0) return 0;
  onEvicted?.({
    files: [...new Set(missing.map(([f]) => f.name))],
    chunks: missing.length,
    bytes: missing.reduce((a, [f, i]) => a + chunkLength(f.size, manifest.chunkBytes, i), 0),
  });
  for (const [file, index] of missing) reader.meter.release((await reader.chunk(file, index)).byteLength);
  return missing.length;
}

/** Bytes of a file's chunk records (present, not necessarily verified). */
async function storedBytes(records: Records, manifest: StoredManifest, file: StoredFile): Promise<number> {
  if (file.sha256 !== null) return file.size;
  const indices = await records.chunkIndices(manifest.id, file.name);
  return indices.reduce((sum, i) => sum + chunkLength(file.size, manifest.chunkBytes, i), 0);
}

async function download(manifest: StoredManifest, records: Records, fetchFn: FetchFn, opts: FetchModelOptions): Promise<void> {
  const pending = manifest.files.filter((f) => f.sha256 === null);
  // Starting point of the progress: what earlier sessions stored (each file's own scan refines it).
  const progress = new ProgressTracker(manifest.files, opts.onProgress);
  let need = 0;
  for (const file of manifest.files) {
    const stored = await storedBytes(records, manifest, file);
    progress.setFileDone(file.name, stored, true);
    need += file.size - stored;
  }
  await ensureSpace(need, manifest.id);
  await requestPersistence();

  // One failure stops the other files (they stay resumable) and is reported once all have stopped.
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  opts.signal?.addEventListener('abort', stop, { once: true });
  let firstError: unknown;
  const retries = opts.retries ?? 3;
  try {
    if (opts.signal?.aborted) throw new Df11Error('aborted', 'download cancelled');
    await mapLimited(pending, opts.concurrency ?? 3, async (file) => {
      if (controller.signal.aborted) return;
      try {
        const job = { modelId: manifest.id, url: `${manifest.sourceUrl}${file.name}`, file, chunkBytes: manifest.chunkBytes };
        const ctx = { records, fetch: fetchFn, signal: controller.signal, progress };
        for (let attempt = 0; ; attempt++) {
          try {
            const result = await downloadFile(job, ctx);
            file.sha256 = result.sha256;
            file.expectedSha256 = result.expectedSha256;
            file.chunkHashes = result.chunkHashes.buffer as ArrayBuffer;
            break;
          } catch (e) {
            const retriable = isDf11Error(e, 'network') || isDf11Error(e, 'integrity');
            if (!retriable || attempt >= retries || controller.signal.aborted) throw e;
            await sleep(250 * (attempt + 1), controller.signal);
          }
        }
        manifest.updatedAt = Date.now();
        await records.putManifest(manifest);
      } catch (e) {
        firstError ??= opts.signal?.aborted ? new Df11Error('aborted', 'download cancelled', { cause: e }) : e;
        controller.abort();
      }
    });
  } finally {
    opts.signal?.removeEventListener('abort', stop);
  }
  if (firstError !== undefined) throw firstError;
  for (const file of manifest.files) {
    if (file.sha256 === null || file.chunkHashes?.byteLength !== chunkCount(file.size, manifest.chunkBytes) * 32) {
      throw new Df11Error('integrity', `${file.name} did not finish downloading`);
    }
  }
}

/** Throws 'quota-exceeded' when the origin's free quota is below `need` bytes (skipped where unknown). */
async function ensureSpace(need: number, id: string): Promise<void> {
  const storage = globalThis.navigator?.storage;
  if (need <= 0 || typeof storage?.estimate !== 'function') return;
  const { quota, usage } = await storage.estimate();
  if (quota === undefined || usage === undefined) return;
  const free = quota - usage;
  if (need > free) {
    throw new Df11Error(
      'quota-exceeded',
      `${id} needs ${megabytes(need)} more storage, but only ${megabytes(free)} of this site's ${megabytes(quota)} quota is free`,
    );
  }
}

/** Asks the browser not to evict the store under storage pressure; a refusal is not an error. */
async function requestPersistence(): Promise<void> {
  const storage = globalThis.navigator?.storage;
  if (typeof storage?.persist !== 'function') return;
  try {
    await storage.persist();
  } catch {
    // Some contexts (e.g. opaque origins) refuse; the download still works, only eviction is possible.
  }
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
