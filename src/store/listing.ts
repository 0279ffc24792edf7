/**
 * Which files make up a remote model directory, with their sizes and (when the source says) SHA-256.
 *
 * Order of preference:
 *  1. a listed manifest: the caller's own list; `files.json` in the directory,
 *     `{ "files": [{ "name", "size", "sha256"? }] }`; or, off Hugging Face, the parent directory's
 *     `index.json` `{ "models": [{ "path", "files": [...] }] }` (what `df11 build-models` writes);
 *  2. DF11 directories: one `<module_with_underscores>.safetensors` per module matched by
 *     `dfloat11_config.pattern_dict`, plus `model.safetensors` when present; or (save_single_file) none of
 *     them and one `model.safetensors`. An index beside DF11 files is ignored, as the official loader does;
 *  3. `model.safetensors.index.json` (sharded HF checkpoints): its weight_map's files;
 *  4. otherwise `model.safetensors`; when that is absent too and `decode.ptx` is there, the repo is a
 *     DFloat11 v0.1 pickle release: Df11Error('unsupported-format');
 * plus config.json and the tokenizer/generation files that exist. Sizes of files not listed come from
 * HEAD (X-Linked-Size or Content-Length); Hugging Face's X-Linked-Etag carries the SHA-256 of LFS files.
 * HTTP 401/403 are Df11Error('access-denied') (gated or private repos), other failures 'network'.
 *
 * URLs: any directory URL (same-origin path or absolute), or a Hugging Face
 * `https://huggingface.co/<repo>/resolve/<rev>/` directory (see `hfResolveUrl`).
 */
import { Df11Error } from '../errors.ts';
import { parameterShapes, specFromConfig, storedModuleNames, textWeightName } from '../format/config.ts';
import { compilePattern, parseDf11Config, unsupportedPickles } from '../format/model-reader.ts';
import { isShardName } from '../format/shard-index.ts';

export interface RemoteFile {
  name: string;
  size: number;
  /** Hex SHA-256 the source announces, or null. */
  sha256: string | null;
}

export type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

/** Files besides weights that a model directory may hold; fetched when the server has them. */
const OPTIONAL_FILES = ['generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'chat_template.json'];

const HF_HOST = 'huggingface.co';

export function hfResolveUrl(repo: string, revision = 'main'): string {
  if (!/^[\w.-]+\/[\w.-]+$/.test(repo)) throw new Df11Error('bad-request', `'${repo}' is not a Hugging Face repo id (owner/name)`);
  return `https://${HF_HOST}/${repo}/resolve/${encodeURIComponent(revision)}/`;
}

/** Absolute directory URL ending with '/'; relative paths resolve against the page (or `base`). */
export function directoryUrl(url: string, base?: string): string {
  let resolved: URL;
  try {
    resolved = new URL(url, base ?? globalThis.location?.href);
  } catch (e) {
    throw new Df11Error('bad-request', `'${url}' is not a URL`, { cause: e });
  }
  if (resolved.protocol !== 'https:' && resolved.protocol !== 'http:') {
    throw new Df11Error('bad-request', `'${url}' is a ${resolved.protocol} URL; models load from http(s) only`);
  }
  resolved.search = '';
  resolved.hash = '';
  const href = resolved.href;
  return href.endsWith('/') ? href : `${href}/`;
}

/** A stable store key: `hf:<repo>@<rev>` for Hugging Face, the directory URL otherwise. */
export function modelIdFromUrl(dirUrl: string): string {
  const u = new URL(dirUrl);
  const hf = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/$/.exec(u.pathname);
  if (u.hostname === HF_HOST && hf) return `hf:${hf[1]}@${decodeURIComponent(hf[2])}`;
  return dirUrl.slice(0, -1);
}

/** SHA-256 from Hugging Face's X-Linked-Etag (LFS files), if readable. */
export function linkedSha256(headers: Headers): string | null {
  const etag = headers.get('x-linked-etag')?.replace(/^W\//, '').replace(/"/g, '').toLowerCase();
  return etag && /^[0-9a-f]{64}$/.test(etag) ? etag : null;
}

export async function listRemoteFiles(dirUrl: string, fetchFn: FetchFn, signal?: AbortSignal): Promise<RemoteFile[]> {
  const listed = await getJson(dirUrl, 'files.json', fetchFn, signal);
  if (listed !== null) return parseFileList(listed, `${dirUrl}files.json`);
  if (new URL(dirUrl).hostname !== HF_HOST) {
    const entry = indexEntry(await getJson(new URL('../', dirUrl).href, 'index.json', fetchFn, signal), dirUrl);
    if (entry !== null) return parseFileList(entry, `${dirUrl}../index.json`);
  }

  const config = await getJson(dirUrl, 'config.json', fetchFn, signal);
  if (config === null) throw new Df11Error('network', `${dirUrl}config.json not found (404)`);
  const required = new Set<string>(['config.json']);
  const optional = new Set<string>(); // weights first, then OPTIONAL_FILES
  const df11 = (config as Record<string, unknown>).dfloat11_config;
  // DF11 first: the official loader never reads an index, and DF11 repos may carry the BF16 original's.
  const unitFiles: string[] = [];
  if (df11 !== undefined) {
    for (const [name, isRequired] of df11Files(config, df11)) {
      optional.add(name);
      if (isRequired) unitFiles.push(name);
    }
    optional.add('model.safetensors');
  } else {
    const index = await getJson(dirUrl, 'model.safetensors.index.json', fetchFn, signal);
    if (index !== null) {
      required.add('model.safetensors.index.json');
      for (const shard of shardsOf(index, dirUrl, config as Record<string, unknown>)) required.add(shard);
    } else {
      optional.add('model.safetensors');
    }
  }
  for (const name of OPTIONAL_FILES) optional.add(name);
  const names = [...required, ...[...optional].filter((n) => !required.has(n))];
  const heads = await mapLimited(names, 6, (name) => headFile(dirUrl, name, fetchFn, signal));
  const found = new Map<string, RemoteFile>();
  names.forEach((name, i) => {
    const head = heads[i];
    if (head) found.set(name, head);
    else if (required.has(name)) throw new Df11Error('network', `${dirUrl}${name} not found (404)`);
  });
  // A DF11 repo has every unit file, or (save_single_file) none and one model.safetensors with all units.
  const missingUnits = unitFiles.filter((n) => !found.has(n));
  if (missingUnits.length > 0 && missingUnits.length < unitFiles.length) {
    throw new Df11Error('network', `${dirUrl}${missingUnits[0]} not found (404; ${missingUnits.length} of ${unitFiles.length} DF11 unit files are missing)`);
  }
  if (![...found.keys()].some((n) => n.endsWith('.safetensors'))) {
    if (await headFile(dirUrl, 'decode.ptx', fetchFn, signal)) throw unsupportedPickles(dirUrl);
    throw new Df11Error('network', `${dirUrl}model.safetensors not found (404)`);
  }
  return [...found.values()];
}

/** DF11 unit files: every module the pattern matches, named with '.' → '_'. The head is optional when tied. */
function df11Files(config: unknown, df11: unknown): Array<[string, boolean]> {
  const spec = specFromConfig(config);
  const patterns = compilePattern(parseDf11Config(df11).pattern_dict);
  const modules = new Set<string>();
  for (const param of parameterShapes(spec).keys()) {
    const parts = param.split('.');
    for (let i = 1; i < parts.length; i++) modules.add(parts.slice(0, i).join('.'));
  }
  if (spec.tieWordEmbeddings) modules.add('lm_head');
  const out: Array<[string, boolean]> = [];
  for (const module of modules) {
    // A multimodal Gemma 3 stores the text modules under language_model.*; the vision tower is never listed.
    const stored = storedModuleNames(config as Record<string, unknown>, module).find((m) => patterns.some((p) => p.regex.test(m)));
    if (stored === undefined) continue;
    const tiedHead = spec.tieWordEmbeddings && module === 'lm_head';
    out.push([`${stored.replace(/\./g, '_')}.safetensors`, !tiedHead]);
  }
  if (out.length === 0) throw new Df11Error('config', 'dfloat11_config.pattern_dict matches no module of this model');
  return out;
}

/** The shards holding weights the runtime reads (a Gemma 3 shard of vision weights only is skipped). */
function shardsOf(index: unknown, dirUrl: string, config: Record<string, unknown>): string[] {
  const map = (index as { weight_map?: unknown }).weight_map;
  if (typeof map !== 'object' || map === null) {
    throw new Df11Error('config', `${dirUrl}model.safetensors.index.json has no weight_map`);
  }
  // Only the shards holding weights the runtime reads (a Gemma 3 shard of vision weights is never needed).
  const used = Object.entries(map as Record<string, unknown>).filter(([name]) => textWeightName(config, name) !== undefined);
  const shards = new Set(used.map(([, shard]) => shard));
  for (const s of shards) {
    if (!isShardName(s)) throw new Df11Error('config', `${dirUrl}model.safetensors.index.json: ${JSON.stringify(s)} is not a .safetensors file of the directory`);
  }
  return [...(shards as Set<string>)];
}

/** The `models[]` entry of a parent index.json whose path is this directory, or null. */
function indexEntry(index: unknown, dirUrl: string): unknown {
  const models = (index as { models?: unknown } | null)?.models;
  if (!Array.isArray(models)) return null;
  const dirName = new URL(dirUrl).pathname.split('/').at(-2);
  for (const m of models) {
    const path = (m as { path?: unknown }).path;
    if (typeof path === 'string' && path.replace(/\/+$/, '').split('/').at(-1) === dirName) return m;
  }
  return null;
}

function parseFileList(value: unknown, where: string): RemoteFile[] {
  const files = (value as { files?: unknown }).files;
  if (!Array.isArray(files) || files.length === 0) throw new Df11Error('config', `${where} has no "files" list`);
  return files.map((f: unknown) => {
    const { name, size, sha256 } = f as Record<string, unknown>;
    if (typeof name !== 'string' || name.includes('..') || typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw new Df11Error('config', `${where}: entry ${JSON.stringify(f)} needs a name and a byte size`);
    }
    if (sha256 !== undefined && (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/i.test(sha256))) {
      throw new Df11Error('config', `${where}: ${name} has a malformed sha256`);
    }
    return { name, size, sha256: typeof sha256 === 'string' ? sha256.toLowerCase() : null };
  });
}

/**
 * A 404, or an HTML page where a file was asked for (static servers with an SPA fallback, like
 * `vite preview`, answer unknown paths with index.html).
 */
function isMissing(response: Response, name: string): boolean {
  if (response.status === 404) return true;
  return response.ok && !name.endsWith('.html') && (response.headers.get('content-type') ?? '').startsWith('text/html');
}

/** GET a small JSON file; null when missing. */
export async function getJson(dirUrl: string, name: string, fetchFn: FetchFn, signal?: AbortSignal): Promise<unknown> {
  const response = await request(`${dirUrl}${name}`, { signal }, fetchFn);
  if (isMissing(response, name)) return null;
  if (!response.ok) throw httpError(`${dirUrl}${name}`, response);
  try {
    return await response.json();
  } catch (e) {
    throw new Df11Error('config', `${dirUrl}${name} is not valid JSON`, { cause: e });
  }
}

/** Size and announced hash of one file; null on 404. */
async function headFile(dirUrl: string, name: string, fetchFn: FetchFn, signal?: AbortSignal): Promise<RemoteFile | null> {
  const response = await request(`${dirUrl}${name}`, { method: 'HEAD', signal }, fetchFn);
  if (isMissing(response, name)) return null;
  if (!response.ok) throw httpError(`${dirUrl}${name}`, response);
  const size = Number(response.headers.get('x-linked-size') ?? response.headers.get('content-length') ?? NaN);
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new Df11Error('network', `${dirUrl}${name}: the server gives no Content-Length (CORS must expose it)`);
  }
  return { name, size, sha256: linkedSha256(response.headers) };
}

/** A failed HTTP response as a typed error: 401/403 are `access-denied` (gated or private repo), the rest `network`. */
export function httpError(url: string, response: Response): Df11Error {
  if (response.status === 401 || response.status === 403) {
    return new Df11Error('access-denied', `${url}: HTTP ${response.status} (access denied: a gated or private repo needs an access token with access to it)`);
  }
  return new Df11Error('network', `${url}: HTTP ${response.status}`);
}

/** fetch with network failures and aborts as typed errors. */
export async function request(url: string, init: RequestInit, fetchFn: FetchFn): Promise<Response> {
  try {
    return await fetchFn(url, init);
  } catch (e) {
    throw networkError(e, url, init.signal ?? undefined);
  }
}

export function networkError(e: unknown, what: string, signal?: AbortSignal): Df11Error {
  if (e instanceof Df11Error) return e;
  if (signal?.aborted) return new Df11Error('aborted', `${what}: download cancelled`, { cause: e });
  return new Df11Error('network', `${what}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
