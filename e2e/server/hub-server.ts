/**
 * A local stand-in for the Hugging Face hub, for the e2e specs: `/<org>/<repo>/resolve/main/<file>` on the
 * hub origin; small files are served there, `.safetensors` files answer 302 to a second origin (the CDN)
 * with `X-Linked-Etag` (SHA-256) and `X-Linked-Size`, as the hub does for LFS files; the CDN serves Range
 * requests. A gated repo answers 401 without `Authorization: Bearer <token>` and 403 with a wrong token.
 * CORS as the hub sends it. Both servers log each request's authorization and Range headers. `hold` keeps
 * matching CDN requests waiting until `release` (a download stopped at a known point, without timers).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface HubRepo {
  /** Directory whose top-level files the repo holds, or the files themselves. */
  dir?: string;
  files?: Map<string, Uint8Array>;
  /** Token a gated repo needs; none: public. */
  token?: string;
}

export interface HubLog {
  origin: 'hub' | 'cdn';
  method: string;
  path: string;
  authorization: string | null;
  /** The Range header, as sent. */
  range: string | null;
  status: number;
}

export interface HubServer {
  hub: string;
  cdn: string;
  /** name → bytes of each repo's files, by `org/repo`. */
  files: Map<string, Map<string, Uint8Array>>;
  requests(): HubLog[];
  reset(): void;
  /** CDN requests for which `when` is true get no answer until `release` (nor after, once their client left). */
  hold(when: (request: HubLog) => boolean): void;
  release(): void;
  close(): Promise<void>;
}

const EXPOSED = 'Content-Length, Content-Range, Accept-Ranges, X-Linked-Etag, X-Linked-Size, ETag, Location';

export async function startHubServer(repos: Record<string, HubRepo>): Promise<HubServer> {
  const files = new Map<string, Map<string, Uint8Array>>();
  for (const [id, repo] of Object.entries(repos)) {
    const m = new Map<string, Uint8Array>(repo.files);
    const dir = repo.dir;
    if (dir !== undefined) for (const name of readdirSync(dir)) if (statSync(join(dir, name)).isFile()) m.set(name, new Uint8Array(readFileSync(join(dir, name))));
    files.set(id, m);
  }
  let log: HubLog[] = [];
  let holding: ((request: HubLog) => boolean) | null = null;
  const held: Array<() => void> = [];
  const cors = (res: ServerResponse): void => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', EXPOSED);
    res.setHeader('Connection', 'close');
  };
  const preflight = (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'OPTIONS') return false;
    res.writeHead(204, { 'Access-Control-Allow-Methods': 'GET, HEAD', 'Access-Control-Allow-Headers': 'Range, Authorization', 'Access-Control-Max-Age': '600' });
    res.end();
    return true;
  };
  const end = (res: ServerResponse, entry: HubLog, status: number, headers: Record<string, string> = {}): void => {
    entry.status = status;
    res.writeHead(status, { 'Content-Length': '0', ...headers });
    res.end();
  };
  let cdnOrigin = '';

  const hub = createServer((req, res) => {
    cors(res);
    if (preflight(req, res)) return;
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const entry: HubLog = { origin: 'hub', method: req.method ?? '?', path, authorization: req.headers.authorization ?? null, range: req.headers.range ?? null, status: 0 };
    log.push(entry);
    const match = /^\/([^/]+\/[^/]+)\/resolve\/main\/([^/]+)$/.exec(path);
    const repo = match ? repos[match[1]!] : undefined;
    const data = match && repo ? files.get(match[1]!)!.get(decodeURIComponent(match[2]!)) : undefined;
    if (repo?.token !== undefined && entry.authorization !== `Bearer ${repo.token}`) return end(res, entry, entry.authorization ? 403 : 401);
    if (!data) return end(res, entry, 404);
    const name = decodeURIComponent(match![2]!);
    if (name.endsWith('.safetensors')) {
      return end(res, entry, 302, {
        Location: `${cdnOrigin}/${match![1]}/${name}`,
        'X-Linked-Etag': `"${createHash('sha256').update(data).digest('hex')}"`,
        'X-Linked-Size': String(data.length),
      });
    }
    serve(req, res, entry, data);
  });
  const cdn = createServer((req, res) => {
    cors(res);
    if (preflight(req, res)) return;
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const entry: HubLog = { origin: 'cdn', method: req.method ?? '?', path, authorization: req.headers.authorization ?? null, range: req.headers.range ?? null, status: 0 };
    log.push(entry);
    const match = /^\/([^/]+\/[^/]+)\/([^/]+)$/.exec(path);
    const data = match ? files.get(match[1]!)?.get(decodeURIComponent(match[2]!)) : undefined;
    if (!data) return end(res, entry, 404);
    if (holding?.(entry)) {
      held.push(() => {
        if (!res.destroyed) serve(req, res, entry, data);
      });
      return;
    }
    serve(req, res, entry, data);
  });
  const listen = async (s: Server): Promise<string> => {
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  };
  const hubOrigin = await listen(hub);
  cdnOrigin = await listen(cdn);
  return {
    hub: hubOrigin,
    cdn: cdnOrigin,
    files,
    requests: () => log.map((e) => ({ ...e })),
    reset: () => void (log = []),
    hold: (when) => void (holding = when),
    release: () => {
      holding = null;
      for (const answer of held.splice(0)) answer();
    },
    close: async () => {
      for (const s of [hub, cdn]) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
    },
  };
}

/** GET/HEAD with a single Range. */
function serve(req: IncomingMessage, res: ServerResponse, entry: HubLog, data: Uint8Array): void {
  let begin = 0;
  let stop = data.length;
  let status = 200;
  const headers: Record<string, string> = { 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream' };
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  if (range) {
    begin = Number(range[1]);
    stop = range[2] === '' ? data.length : Math.min(Number(range[2]) + 1, data.length);
    status = 206;
    headers['Content-Range'] = `bytes ${begin}-${stop - 1}/${data.length}`;
  }
  headers['Content-Length'] = String(stop - begin);
  entry.status = status;
  res.writeHead(status, headers);
  res.end(req.method === 'HEAD' ? undefined : data.subarray(begin, stop));
}
