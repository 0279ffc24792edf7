/**
 * A complete stored model as `ModelFiles`: `open(name)` gives a ByteSource whose `read(begin, end)` loads
 * only the chunk records that overlap the range, one at a time, so reading a safetensors header or one
 * DF11 unit never pulls the whole file into the JS heap. Reads of one model run one after another (even
 * when the caller starts several at once, as readUnit does with Promise.all) and each returns a buffer of
 * exactly the bytes asked for, so reading a unit peaks at the unit's bytes plus one chunk.
 *
 * Every chunk is checked against the SHA-256 recorded when its file was verified before it is used; a
 * missing or corrupt chunk is refetched from the source with a Range request, checked, stored again and
 * then used. If that fails the read throws Df11Error('integrity') — bad bytes are never returned.
 */
import { Df11Error } from '../errors.ts';
import type { ByteSource, ModelFiles } from '../format/byte-source.ts';
import { chunkCount, chunkLength } from './download.ts';
import { request, type FetchFn } from './listing.ts';
import type { Records, StoredFile, StoredManifest } from './records.ts';
import { readBodySlice } from './remote-files.ts';
import { equalBytes, sha256Native } from './sha256.ts';

/** Bytes the store's readers hold right now (outputs being assembled + chunks loaded), and the peak. */
export class ReadMeter {
  held = 0;
  peak = 0;
  chunksLoaded = 0;
  chunksRepaired = 0;

  hold(bytes: number): void {
    this.held += bytes;
    this.peak = Math.max(this.peak, this.held);
  }

  release(bytes: number): void {
    this.held -= bytes;
  }

  resetPeak(): void {
    this.peak = this.held;
  }
}

export class ChunkReader {
  /** Settles when the last queued read has finished. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly manifest: StoredManifest,
    private readonly records: Records,
    private readonly fetchFn: FetchFn,
    readonly meter: ReadMeter,
  ) {}

  /** Runs reads one at a time, in call order. */
  exclusive<T>(read: () => Promise<T>): Promise<T> {
    const run = this.tail.then(read, read);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Chunk `index` of `file`, verified (repaired if needed). Counted as held until the caller releases it. */
  async chunk(file: StoredFile, index: number): Promise<Uint8Array> {
    const expected = expectedHash(file, index);
    const length = chunkLength(file.size, this.manifest.chunkBytes, index);
    const record = await this.records.getChunk(this.manifest.id, file.name, index);
    let data: Uint8Array = record ? new Uint8Array(record.data) : new Uint8Array(0);
    this.meter.chunksLoaded++;
    this.meter.hold(data.byteLength); // held from the moment IndexedDB hands it over
    if (!record || data.byteLength !== length || !equalBytes(await sha256Native(data), expected)) {
      this.meter.release(data.byteLength);
      data = await this.repair(file, index, length, expected);
      this.meter.hold(data.byteLength);
    }
    return data;
  }

  private async repair(file: StoredFile, index: number, length: number, expected: Uint8Array): Promise<Uint8Array> {
    const url = `${this.manifest.sourceUrl}${file.name}`;
    const begin = index * this.manifest.chunkBytes;
    const response = await request(url, { headers: { Range: `bytes=${begin}-${begin + length - 1}` } }, this.fetchFn);
    if (response.status !== 206 && response.status !== 200) {
      throw new Df11Error('integrity', `${file.name} chunk ${index} is damaged and refetching it failed: HTTP ${response.status}`);
    }
    // A 200 is the whole file (Range ignored): keep only this chunk's bytes.
    const data = await readBodySlice(response, response.status === 200 ? begin : 0, length, url, 'integrity');
    const digest = await sha256Native(data);
    if (!equalBytes(digest, expected)) {
      throw new Df11Error('integrity', `${file.name} chunk ${index} is damaged, and the refetched bytes do not match the verified download`);
    }
    await this.records.putChunk(this.manifest.id, file.name, index, { data: data.buffer as ArrayBuffer, sha256: digest.slice().buffer, hashAfter: null });
    this.meter.chunksRepaired++;
    return data;
  }
}

function expectedHash(file: StoredFile, index: number): Uint8Array {
  if (!file.chunkHashes) throw new Df11Error('integrity', `${file.name} is not completely stored`);
  return new Uint8Array(file.chunkHashes, index * 32, 32);
}

export function storedModelFiles(reader: ChunkReader, manifest: StoredManifest): ModelFiles {
  const byName = new Map(manifest.files.map((f) => [f.name, f]));
  return {
    location: `IndexedDB: ${manifest.id}`,
    list: async () => [...byName.keys()].sort(),
    async open(name) {
      const file = byName.get(name);
      if (!file) throw new Df11Error('missing-tensor', `IndexedDB: ${manifest.id} has no file '${name}'`);
      return chunkSource(reader, file, manifest.chunkBytes);
    },
    freshReads: true,
  };
}

function chunkSource(reader: ChunkReader, file: StoredFile, chunkBytes: number): ByteSource {
  const meter = reader.meter;
  return {
    size: file.size,
    read: (begin, end) => reader.exclusive(() => readRange(begin, end)),
  };

  async function readRange(begin: number, end: number): Promise<Uint8Array> {
    if (!(Number.isSafeInteger(begin) && Number.isSafeInteger(end) && 0 <= begin && begin <= end && end <= file.size)) {
      throw new Df11Error('bad-request', `${file.name}: read [${begin}, ${end}) outside the file (${file.size} bytes)`);
    }
    if (begin === end) return new Uint8Array(0);
    const first = Math.floor(begin / chunkBytes);
    const last = Math.floor((end - 1) / chunkBytes);
    if (first === last) {
      const data = await reader.chunk(file, first);
      // A copy unless it is the whole chunk: a view would keep the whole chunk alive with the caller.
      const from = begin - first * chunkBytes;
      const result = from === 0 && end - begin === data.byteLength ? data : data.slice(from, end - first * chunkBytes);
      if (result !== data) meter.hold(result.byteLength); // briefly both: the chunk and its copy
      meter.release(data.byteLength + (result !== data ? result.byteLength : 0));
      return result;
    }
    const out = new Uint8Array(end - begin);
    meter.hold(out.byteLength);
    try {
      // One chunk at a time: loading them concurrently would hold every chunk of the range at once.
      for (let index = first; index <= last; index++) {
        const data = await reader.chunk(file, index);
        const base = index * chunkBytes;
        const from = Math.max(begin - base, 0);
        const to = Math.min(end - base, data.byteLength);
        out.set(data.subarray(from, to), base + from - begin);
        meter.release(data.byteLength);
      }
    } finally {
      meter.release(out.byteLength);
    }
    return out;
  }
}

/** Reads every chunk of a complete model, repairing damaged or missing ones; returns how many were repaired. */
export async function verifyStoredModel(reader: ChunkReader, manifest: StoredManifest): Promise<number> {
  const before = reader.meter.chunksRepaired;
  for (const file of manifest.files) {
    const n = chunkCount(file.size, manifest.chunkBytes);
    for (let index = 0; index < n; index++) {
      const data = await reader.chunk(file, index);
      reader.meter.release(data.byteLength);
    }
  }
  return reader.meter.chunksRepaired - before;
}
