/**
 * A remote model directory read in place: `open(name).read(begin, end)` is one HTTP Range request for just
 * those bytes, so a BF16 model can be compressed unit by unit while it downloads, holding only the units in
 * flight (src/store/compress-once.ts) and storing nothing of the BF16 bytes. Sizes come from the listing.
 * A server that ignores Range (200) still works: the body is read up to the bytes asked for and dropped.
 *
 * Errors: Df11Error 'network' (failures, short or wrong answers) | 'access-denied' (401/403) | 'aborted'.
 */
import { Df11Error } from '../errors.ts';
import type { ByteSource, ModelFiles } from '../format/byte-source.ts';
import { httpError, networkError, request, type FetchFn, type RemoteFile } from './listing.ts';

export interface RemoteReadOptions {
  signal?: AbortSignal;
}

export function remoteModelFiles(dirUrl: string, files: readonly RemoteFile[], fetchFn: FetchFn, options: RemoteReadOptions = {}): ModelFiles {
  const byName = new Map(files.map((f) => [f.name, f]));
  return {
    location: dirUrl,
    list: async () => [...byName.keys()].sort(),
    async open(name) {
      const file = byName.get(name);
      if (!file) throw new Df11Error('missing-tensor', `${dirUrl} has no file '${name}'`);
      return remoteSource(`${dirUrl}${name}`, file.size, fetchFn, options);
    },
    freshReads: true,
  };
}

function remoteSource(url: string, size: number, fetchFn: FetchFn, options: RemoteReadOptions): ByteSource {
  return {
    size,
    async read(begin, end) {
      if (!(Number.isSafeInteger(begin) && Number.isSafeInteger(end) && 0 <= begin && begin <= end && end <= size)) {
        throw new Df11Error('bad-request', `${url}: read [${begin}, ${end}) outside the file (${size} bytes)`);
      }
      if (begin === end) return new Uint8Array(0);
      // no-store: the browser's HTTP cache would keep the BF16 bytes, and it runs concurrent requests for one
      // URL one after another (Chromium's cache lock), which would serialize the reads of the units in flight.
      const init: RequestInit = { headers: { Range: `bytes=${begin}-${end - 1}` }, signal: options.signal, cache: 'no-store' };
      const response = await request(url, init, fetchFn);
      if (response.status === 206) {
        const range = /^bytes (\d+)-(\d+)\//.exec(response.headers.get('content-range') ?? '');
        if (!range || Number(range[1]) !== begin || Number(range[2]) !== end - 1) {
          response.body?.cancel().catch(() => undefined);
          throw new Df11Error('network', `${url}: asked for bytes ${begin}-${end - 1} and got Content-Range '${response.headers.get('content-range')}'`);
        }
        // The browser assembles the body itself: one buffer, no copying chunk by chunk here.
        let body: ArrayBuffer;
        try {
          body = await response.arrayBuffer();
        } catch (e) {
          throw networkError(e, url, options.signal);
        }
        if (body.byteLength !== end - begin) throw new Df11Error('network', `${url}: asked for ${end - begin} bytes and got ${body.byteLength}`);
        return new Uint8Array(body);
      } else if (!response.ok) {
        throw httpError(url, response);
      }
      // A 200 is the whole file (Range ignored): keep only the bytes asked for.
      return readBodySlice(response, response.status === 200 ? begin : 0, end - begin, url, 'network', options);
    },
  };
}

/**
 * `length` bytes of a response body from byte `skip` on, reading no further than needed; failures and short
 * bodies are Df11Error(`code`).
 */
export async function readBodySlice(
  response: Response,
  skip: number,
  length: number,
  url: string,
  code: 'network' | 'integrity',
  options: RemoteReadOptions = {},
): Promise<Uint8Array> {
  if (!response.body) throw new Df11Error(code, `${url}: the response has no body`);
  const out = new Uint8Array(length);
  const reader = response.body.getReader();
  let position = 0; // bytes of the body seen
  try {
    while (position < skip + length) {
      const { done, value } = await reader.read();
      if (done) break;
      const from = Math.max(skip - position, 0);
      const to = Math.min(value.byteLength, skip + length - position);
      if (to > from) out.set(value.subarray(from, to), position + from - skip);
      position += value.byteLength;
    }
  } catch (e) {
    const error = networkError(e, url, options.signal);
    throw error.code === 'aborted' ? error : new Df11Error(code, `${url}: reading the response failed (${error.message})`, { cause: e });
  } finally {
    reader.cancel().catch(() => undefined);
  }
  if (position < skip + length) throw new Df11Error(code, `${url}: the response ended after ${Math.max(position - skip, 0)} of ${length} bytes`);
  return out;
}
