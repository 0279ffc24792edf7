/**
 * A small HTTP file server for store tests that can misbehave on purpose. It serves the files of one flat
 * directory under any path (the last path segment is the file name, so both `/m/<file>` and the Hugging
 * Face shape `/<org>/<repo>/resolve/<rev>/<file>` work), with HEAD, single Range requests, CORS for a page
 * on another origin, and HF's `X-Linked-Etag` (SHA-256) / `X-Linked-Size` headers.
 *
 * Switches (set with `configure`, each fault fires once and then clears itself):
 *   dropAfterBytes  destroy every open response once this many more body bytes have been sent
 *   ignoreRange     answer Range requests with the whole file (200)
 *   corruptOnce     flip the byte at { file, offset } in the next body that contains it
 *   stall           { afterBytes, responseBytes }: once `afterBytes` more body bytes have been sent, every
 *                   response stalls as soon as it has sent `responseBytes` (a smaller file completes), until
 *                   the switch is set again: a stalled network the test steps from outside (`allStalled`)
 *   afterPiece      in-process hook called with the body bytes sent after each piece (tests step a download)
 *   linkedEtag      send X-Linked-Etag (default true)
 *   filesJson       serve a generated files.json listing (default false: 404)
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface FaultSwitches {
  dropAfterBytes: number | null;
  ignoreRange: boolean;
  corruptOnce: { file: string; offset: number } | null;
  stall: { afterBytes: number; responseBytes: number } | null;
  /** In-process tests only: called after each piece is written (a test steps a download from here). */
  afterPiece: ((sentBytes: number) => void) | null;
  linkedEtag: boolean;
  filesJson: boolean;
}

export interface RequestLog {
  method: string;
  file: string;
  range: string | null;
  status: number;
  /** Body bytes actually written before the response ended or was dropped. */
  bytes: number;
}

export interface FaultServer {
  /** http://127.0.0.1:<port> */
  origin: string;
  /** name → bytes of every served file. */
  files: Map<string, Uint8Array>;
  configure(switches: Partial<FaultSwitches>): void;
  /** Body bytes sent since the last reset. */
  bytesSent(): number;
  /** Whether every open response is stalled (see the `stall` switch). */
  allStalled(): boolean;
  requests(): RequestLog[];
  reset(): void;
  close(): Promise<void>;
}

const PIECE = 64 * 1024;
const EXPOSED = 'Content-Length, Content-Range, Accept-Ranges, X-Linked-Etag, X-Linked-Size, ETag';

export async function startFaultServer(root: string, port = 0): Promise<FaultServer> {
  const files = new Map<string, Uint8Array>();
  for (const name of readdirSync(root)) {
    if (statSync(join(root, name)).isFile()) files.set(name, new Uint8Array(readFileSync(join(root, name))));
  }
  const sha = new Map([...files].map(([name, data]) => [name, createHash('sha256').update(data).digest('hex')]));
  const defaults: FaultSwitches = { dropAfterBytes: null, ignoreRange: false, corruptOnce: null, stall: null, afterPiece: null, linkedEtag: true, filesJson: false };
  let switches = { ...defaults };
  let sent = 0;
  let sentAtDropArm = 0;
  let sentAtStallArm = 0;
  /** Settles when `stall` is next set (stalled responses then look at the switch again). */
  let stallChanged = signal();
  let stalled = 0;
  let log: RequestLog[] = [];
  const open = new Set<ServerResponse>();

  const listing = (): Uint8Array =>
    new TextEncoder().encode(JSON.stringify({ files: [...files].map(([name, d]) => ({ name, size: d.length, sha256: sha.get(name) })) }));

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // One connection per request, so cutting a response never strands a reused keep-alive socket.
    res.setHeader('Connection', 'close');
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', EXPOSED);
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'Access-Control-Allow-Methods': 'GET, HEAD', 'Access-Control-Allow-Headers': 'Range', 'Access-Control-Max-Age': '600' });
      res.end();
      return;
    }
    const name = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname.split('/').pop() ?? '');
    const data = name === 'files.json' && switches.filesJson ? listing() : files.get(name);
    const entry: RequestLog = { method: req.method ?? '?', file: name, range: req.headers.range ?? null, status: 0, bytes: 0 };
    log.push(entry);
    if (!data || (req.method !== 'GET' && req.method !== 'HEAD')) {
      entry.status = data ? 405 : 404;
      res.writeHead(entry.status, { 'Content-Length': '0' });
      res.end();
      return;
    }
    let begin = 0;
    let end = data.length;
    let status = 200;
    const headers: Record<string, string> = { 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream' };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range && !switches.ignoreRange) {
      begin = Number(range[1]);
      end = range[2] === '' ? data.length : Math.min(Number(range[2]) + 1, data.length);
      if (begin >= data.length || begin >= end) {
        entry.status = 416;
        res.writeHead(416, { 'Content-Range': `bytes */${data.length}`, 'Content-Length': '0' });
        res.end();
        return;
      }
      status = 206;
      headers['Content-Range'] = `bytes ${begin}-${end - 1}/${data.length}`;
    }
    headers['Content-Length'] = String(end - begin);
    if (files.has(name)) {
      headers['X-Linked-Size'] = String(data.length);
      if (switches.linkedEtag) headers['X-Linked-Etag'] = `"${sha.get(name)}"`;
    }
    entry.status = status;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    open.add(res);
    res.on('close', () => open.delete(res));
    for (let pos = begin; pos < end; pos += PIECE) {
      for (let s = switches.stall; s !== null && sent >= sentAtStallArm + s.afterBytes && entry.bytes >= s.responseBytes && !res.destroyed; s = switches.stall) {
        stalled++;
        await stallChanged.promise;
        stalled--;
      }
      if (res.destroyed) return;
      let piece = data.subarray(pos, Math.min(pos + PIECE, end));
      const corrupt = switches.corruptOnce;
      if (corrupt && corrupt.file === name && corrupt.offset >= pos && corrupt.offset < pos + piece.length) {
        piece = piece.slice();
        piece[corrupt.offset - pos] ^= 0xff;
        switches.corruptOnce = null;
      }
      if (switches.dropAfterBytes !== null) {
        const budget = sentAtDropArm + switches.dropAfterBytes - sent;
        if (piece.length >= budget) {
          // Network lost: send what the budget allows, then cut every open response.
          switches.dropAfterBytes = null;
          if (budget > 0) sent += await write(res, piece.subarray(0, budget), entry);
          for (const r of open) cut(r);
          return;
        }
      }
      sent += await write(res, piece, entry);
      switches.afterPiece?.(sent);
    }
    res.end();
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: actual } = server.address() as AddressInfo;

  return {
    origin: `http://127.0.0.1:${actual}`,
    files,
    configure(update) {
      switches = { ...switches, ...update };
      if (update.dropAfterBytes !== undefined) sentAtDropArm = sent;
      if (update.stall !== undefined) {
        sentAtStallArm = sent;
        stallChanged.resolve();
        stallChanged = signal();
      }
    },
    bytesSent: () => sent,
    allStalled: () => open.size > 0 && stalled === open.size,
    requests: () => log.map((e) => ({ ...e })),
    reset() {
      switches = { ...defaults };
      stallChanged.resolve();
      stallChanged = signal();
      sent = 0;
      sentAtDropArm = 0;
      log = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const r of open) cut(r);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A promise and the function that settles it. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Cuts the connection with a TCP reset, as a lost network does (a plain close can look like a slow peer). */
function cut(res: ServerResponse): void {
  const socket = res.socket;
  if (socket && typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else res.destroy();
}

/** Writes one piece, waiting for the socket to drain; returns (and logs) the bytes handed to the socket. */
function write(res: ServerResponse, piece: Uint8Array, entry: RequestLog): Promise<number> {
  return new Promise((resolve) => {
    if (res.destroyed) return resolve(0);
    entry.bytes += piece.length;
    if (res.write(piece)) return resolve(piece.length);
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve(piece.length);
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
