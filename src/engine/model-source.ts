/**
 * Where a model's files come from: the one place the engine turns a source URL into ModelFiles.
 * The model store (src/store) downloads a directory into IndexedDB once (resumable, verified) and
 * reads it from there afterwards, also offline.
 */
import type { ModelFiles } from '../format/byte-source.ts';
import { directoryUrl, hfResolveUrl, openModelStore, type ModelStore } from '../store/model-store.ts';
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

/** The files of the model at `source` (a directory URL or a Hugging Face repo URL), stored locally. */
export async function fetchModelFiles(source: string, options: FetchOptions = {}): Promise<ModelFiles> {
  const url = modelDirectoryUrl(source);
  store ??= openModelStore();
  return store.fetchModel(url, {
    signal: options.signal,
    accessToken: options.accessToken,
    onProgress: (p) =>
      options.onProgress?.({
        phase: 'download',
        loaded: p.bytesDone,
        total: p.bytesTotal,
        file: p.file,
        bytesPerSecond: p.bytesPerSecond,
        etaSeconds: p.etaSeconds,
      }),
  });
}
