/**
 * Streams one file into chunk records, resuming after the last verified chunk a previous session stored.
 *
 * Resume: the stored chunks 0..k-1 that are present, the right length and match their own SHA-256 are kept;
 * the file hash continues from the state saved in chunk k-1, and bytes k·chunkBytes.. are requested with
 * `Range`. A server that ignores Range (200 instead of 206) gets the whole file refetched from byte 0.
 * Integrity: when the source announced a SHA-256 (listing or X-Linked-Etag) and the stored bytes differ,
 * the file's chunks are deleted and Df11Error('integrity') is thrown, so a retry starts clean.
 */
import { Df11Error } from '../errors.ts';
import { httpError, linkedSha256, networkError, request, type FetchFn } from './listing.ts';
import type { ProgressTracker } from './progress.ts';
import type { ChunkRecord, Records, StoredFile } from './records.ts';
import { equalBytes, Sha256, sha256Native, toHex, type Sha256State } from './sha256.ts';

export interface FileJob {
  modelId: string;
  url: string;
  file: StoredFile;
  chunkBytes: number;
}

export interface DownloadContext {
  records: Records;
  fetch: FetchFn;
  signal: AbortSignal;
  progress: ProgressTracker;
}

export interface FileResult {
  sha256: string;
  /** SHA-256 of every chunk.  (n_chunks, 32) */
  chunkHashes: Uint8Array;
  expectedSha256: string | null;
}

export function chunkCount(size: number, chunkBytes: number): number {
  return Math.ceil(size / chunkBytes);
}

export function chunkLength(size: number, chunkBytes: number, index: number): number {
  return Math.min(chunkBytes, size - index * chunkBytes);
}

export async function downloadFile(job: FileJob, ctx: DownloadContext): Promise<FileResult> {
  const { file, chunkBytes } = job;
  const n = chunkCount(file.size, chunkBytes);
  const prefix = await storedPrefix(job, ctx.records);
  let { next, hasher } = prefix;
  const hashes = prefix.hashes;
  ctx.progress.setFileDone(file.name, Math.min(next * chunkBytes, file.size));
  let expected = file.expectedSha256;

  if (next < n) {
    const start = next * chunkBytes;
    const init: RequestInit = { signal: ctx.signal };
    if (start > 0) init.headers = { Range: `bytes=${start}-` };
    const response = await request(job.url, init, ctx.fetch);
    if (response.status === 200 && start > 0) {
      // The server ignored Range: take the whole body from byte 0 instead.
      next = 0;
      hasher = new Sha256();
      ctx.progress.setFileDone(file.name, 0);
    } else if (response.status === 206) {
      const range = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '');
      if (!range || Number(range[1]) !== start) {
        throw new Df11Error('network', `${job.url}: asked for bytes ${start}- and got Content-Range '${response.headers.get('content-range')}'`);
      }
    } else if (!response.ok) {
      throw httpError(job.url, response);
    }
    expected ??= linkedSha256(response.headers);
    await streamChunks(job, ctx, response, next, hasher, hashes);
  }

  const sha256 = toHex(hasher.digest());
  if (expected !== null && sha256 !== expected) {
    await ctx.records.deleteFileChunks(job.modelId, file.name);
    ctx.progress.setFileDone(file.name, 0);
    throw new Df11Error('integrity', `${job.url}: SHA-256 ${sha256} differs from the announced ${expected}; the file will be refetched`);
  }
  return { sha256, chunkHashes: hashes, expectedSha256: expected };
}

/** The verified chunks 0..next-1 already stored, and the file hash over them. */
async function storedPrefix(job: FileJob, records: Records): Promise<{ next: number; hashes: Uint8Array; hasher: Sha256 }> {
  const { modelId, file, chunkBytes } = job;
  const n = chunkCount(file.size, chunkBytes);
  const hashes = new Uint8Array(n * 32);
  const present = new Set(await records.chunkIndices(modelId, file.name));
  let state: Sha256State | undefined;
  let lastData: Uint8Array | undefined;
  let next = 0;
  for (; next < n && present.has(next); next++) {
    const record = await records.getChunk(modelId, file.name, next);
    const isLast = next === n - 1;
    if (!record || record.data.byteLength !== chunkLength(file.size, chunkBytes, next)) break;
    if (!isLast && record.hashAfter === null) break;
    const data = new Uint8Array(record.data);
    const digest = await sha256Native(data);
    if (!equalBytes(digest, new Uint8Array(record.sha256))) break;
    hashes.set(digest, next * 32);
    if (isLast) lastData = data;
    else state = record.hashAfter ?? undefined;
  }
  const hasher = new Sha256(state);
  if (lastData) hasher.update(lastData);
  return { next, hashes, hasher };
}

/** Cuts the body into chunk records from chunk `first` on; holds one chunk buffer at a time. */
async function streamChunks(
  job: FileJob,
  ctx: DownloadContext,
  response: Response,
  first: number,
  hasher: Sha256,
  hashes: Uint8Array,
): Promise<void> {
  const { file, chunkBytes } = job;
  const n = chunkCount(file.size, chunkBytes);
  const expectedBytes = file.size - first * chunkBytes;
  if (!response.body) throw new Df11Error('network', `${job.url}: response has no body`);
  const reader = response.body.getReader();
  const buffer = new Uint8Array(chunkBytes);
  let fill = 0;
  let index = first;
  let received = 0;

  const store = async (data: Uint8Array): Promise<void> => {
    const digest = await sha256Native(data);
    hasher.update(data);
    const isLast = index === n - 1;
    const record: ChunkRecord = {
      // A full chunk is exactly `buffer`: IndexedDB clones it on put, so it can be refilled afterwards.
      data: data.byteLength === chunkBytes ? buffer.buffer : data.slice().buffer,
      sha256: digest.slice().buffer,
      hashAfter: isLast ? null : hasher.state(),
    };
    await ctx.records.putChunk(job.modelId, file.name, index, record);
    hashes.set(digest, index * 32);
    index++;
    ctx.progress.setFileDone(file.name, Math.min(index * chunkBytes, file.size));
  };

  try {
    // Bounded by the body: more bytes than the file holds is an error below.
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.byteLength;
      ctx.progress.addNetworkBytes(value.byteLength);
      if (received > expectedBytes) {
        throw new Df11Error('network', `${job.url}: the server sent more than the ${file.size} bytes announced`);
      }
      for (let offset = 0; offset < value.byteLength; ) {
        const take = Math.min(chunkLength(file.size, chunkBytes, index) - fill, value.byteLength - offset);
        buffer.set(value.subarray(offset, offset + take), fill);
        fill += take;
        offset += take;
        if (fill === chunkLength(file.size, chunkBytes, index)) {
          await store(buffer.subarray(0, fill));
          fill = 0;
        }
      }
    }
  } catch (e) {
    reader.cancel().catch(() => undefined);
    throw networkError(e, job.url, ctx.signal);
  }
  if (index < n) {
    throw new Df11Error('network', `${job.url}: connection closed after ${first * chunkBytes + received} of ${file.size} bytes`);
  }
}
