/**
 * Where a model's files come from: the one place the engine turns a source URL into ModelFiles.
 * Same-origin directories are listed by the site's models/index.json (written by `df11 build-models`);
 * Hugging Face repositories by the Hub API. Files are fetched whole, with progress.
 */
import { Df11Error } from '../errors.ts';
import type { ModelFiles } from '../format/byte-source.ts';
import { memoryFiles } from '../format/memory-files.ts';
import type { LoadProgress } from './types.ts';

export interface FetchOptions {
  onProgress?: (progress: LoadProgress) => void;
  signal?: AbortSignal;
}

interface Listing {
  /** Directory URL ending with '/'. */
  base: string;
  files: { name: string; size: number }[];
}

const HF_REPO = /^https:\/\/huggingface\.co\/([\w.-]+\/[\w.-]+)(?:\/tree\/([\w.-]+))?\/?$/;

export async function fetchModelFiles(source: string, options: FetchOptions = {}): Promise<ModelFiles> {
  const listing = await list(source, options.signal);
  const total = listing.files.reduce((a, f) => a + f.size, 0);
  let loaded = 0;
  const data = new Map<string, Uint8Array>();
  for (const file of listing.files) {
    data.set(file.name, await download(new URL(file.name, listing.base).href, options.signal, (n) => {
      loaded += n;
      options.onProgress?.({ phase: 'download', loaded, total, file: file.name });
    }));
  }
  return memoryFiles(data, listing.base);
}

async function list(source: string, signal?: AbortSignal): Promise<Listing> {
  const hf = HF_REPO.exec(source);
  if (hf) {
    const [, repo, revision = 'main'] = hf;
    const info = await fetchJson<{ siblings?: { rfilename: string; size?: number }[] }>(
      `https://huggingface.co/api/models/${repo}/revision/${revision}?blobs=true`, signal);
    const files = (info.siblings ?? []).filter((s) => /\.(json|safetensors)$/.test(s.rfilename));
    return { base: `https://huggingface.co/${repo}/resolve/${revision}/`, files: files.map((s) => ({ name: s.rfilename, size: s.size ?? 0 })) };
  }
  const base = new URL(source.endsWith('/') ? source : `${source}/`, globalThis.location?.href).href;
  const indexUrl = new URL('../index.json', base).href;
  const index = await fetchJson<{ models: { path: string; files: { name: string; size: number }[] }[] }>(indexUrl, signal);
  // entries are siblings of index.json: match on the directory name
  const entry = index.models.find((m) => new URL(`${m.path.split('/').pop()}/`, indexUrl).href === base);
  if (!entry) throw new Df11Error('network', `${indexUrl} does not list ${base}`);
  return { base, files: entry.files };
}

async function fetchJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  const response = await request(url, signal);
  try {
    return (await response.json()) as T;
  } catch (cause) {
    throw new Df11Error('network', `${url} is not JSON (wrong address?)`, { cause });
  }
}

async function request(url: string, signal?: AbortSignal): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { signal });
  } catch (cause) {
    if (signal?.aborted) throw new Df11Error('aborted', 'the download was aborted', { cause });
    throw new Df11Error('network', `could not fetch ${url}: ${String(cause)}`, { cause });
  }
  if (!response.ok) throw new Df11Error('network', `${url}: HTTP ${response.status}`);
  return response;
}

async function download(url: string, signal: AbortSignal | undefined, onBytes: (n: number) => void): Promise<Uint8Array> {
  const response = await request(url, signal);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = response.body!.getReader();
  try {
    // bounded by the response length
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
      onBytes(value.byteLength);
    }
  } catch (cause) {
    if (signal?.aborted) throw new Df11Error('aborted', 'the download was aborted', { cause });
    throw new Df11Error('network', `download of ${url} failed: ${String(cause)}`, { cause });
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
