/**
 * Where a model's files come from: the one place the engine turns a source URL into ModelFiles.
 * The model store (src/store) downloads a directory into IndexedDB once (resumable, verified) and
 * reads it from there afterwards, also offline.
 */
import type { ModelFiles } from '../format/byte-source.ts';
import { fetchCompressed } from '../store/compress-once.ts';
import { directoryUrl, hfResolveUrl, modelIdFromUrl, openModelStore, type ModelStore } from '../store/model-store.ts';
import { webEncoder } from './web-encoder.ts';
import type { LoadProgress } from './types.ts';

export interface FetchOptions {
  onProgress?: (progress: LoadProgress) => void;
  signal?: AbortSignal;
  /** Token for gated or private repos; sent to the model's own origin only. */
  accessToken?: string;
}

/** https://huggingface.co/<owner>/<repo>[/tree/<revision>] — a repo page rather than a file directory. */
const HF_REPO_PAGE = /^https:\/\/huggingface\.co\/([\w.-]+\/[\w.-]+)(?:\/tree\/([^/]+))?\/?$/;

let store: ModelStore | null = null;

/** The directory URL the store downloads from: a repo page becomes its `resolve/<revision>/` directory. */
export function modelDirectoryUrl(source: string): string {
  const repo = HF_REPO_PAGE.exec(source);
  return repo ? hfResolveUrl(repo[1], repo[2] ? decodeURIComponent(repo[2]) : undefined) : directoryUrl(source);
}

/**
 * The files of the model at `source` (a directory URL or a Hugging Face repo URL), stored locally. A BF16
 * model is compressed once while it downloads (src/store/compress-once.ts, units encoded by a Web Worker
 * pool; only DF11 is stored) and its DF11 copy is what this returns then and at every later load.
 */
export async function fetchModelFiles(source: string, options: FetchOptions = {}): Promise<ModelFiles> {
  const url = modelDirectoryUrl(source);
  const id = modelIdFromUrl(url);
  const current = (store ??= openModelStore());
  const fetchStored = (): Promise<ModelFiles> =>
    fetchCompressed(current, url, {
      signal: options.signal,
      accessToken: options.accessToken,
      encoder: () => webEncoder(),
      onProgress: (p) =>
        options.onProgress?.({
          phase: 'download',
          loaded: p.bytesDone,
          total: p.bytesTotal,
          file: p.file,
          bytesPerSecond: p.bytesPerSecond,
          etaSeconds: p.etaSeconds,
        }),
      onUnit: (p) => options.onProgress?.({ phase: 'compress', loaded: p.index + 1, total: p.count, file: p.unit }),
    });
  // One tab fetches or compresses a model at a time (Web Locks); another tab's finished copy is reused.
  const locks = globalThis.navigator?.locks;
  return locks ? (locks.request(`df11-compress:${id}`, fetchStored) as Promise<ModelFiles>) : fetchStored();
}
