/** Compress once: a BF16 repo becomes a stored DF11 copy while it downloads, resumable per unit; BF16 is never stored. */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { beforeEach, describe, expect, it } from 'vitest';
import { openModel } from '../src/format/model-reader.ts';
import { inThreadEncoder, type UnitEncoder } from '../src/format/unit-encoder.ts';
import { bufferSource } from '../src/format/byte-source.ts';
import { SafetensorsFile } from '../src/format/safetensors.ts';
import { compressedId, fetchCompressed, storeCompressed } from '../src/store/compress-once.ts';
import { modelIdFromUrl, openModelStore } from '../src/store/model-store.ts';
import { expectUnitsDecodeTo } from './df11-checks.ts';
import { readReferenceTensors } from './format-reference.ts';
import { hubFetch, loadDir } from './official-layouts.ts';

const DIR = 'https://hub.test/org/stories-15m/resolve/main/';
const ORIGINAL = 'models/stories-15m';

beforeEach(() => {
  globalThis.indexedDB = new IDBFactory();
});

/** Every weight of the stored DF11 copy equals the BF16 original, bit for bit. */
async function expectOriginal(files: Parameters<typeof openModel>[0]): Promise<void> {
  const model = await openModel(files);
  expect(model.format).toBe('df11');
  const ref = readReferenceTensors(`${ORIGINAL}/model.safetensors`);
  expect((await expectUnitsDecodeTo(model, ref)).matrices).toBe(8 * 7 + 2);
}

/** Counts units; fails with a network-like error on unit number `failAt` (a closed tab, say). */
function countingEncoder(failAt = Infinity): UnitEncoder & { encoded: string[] } {
  const encoded: string[] = [];
  return {
    encoded,
    concurrency: 1,
    async encode(name, matrices) {
      if (encoded.length === failAt) throw new Error('tab closed');
      encoded.push(name);
      return inThreadEncoder.encode(name, matrices);
    },
    close: async () => undefined,
  };
}

describe('compress once into the store', () => {
  it('stores DF11 (about 0.68x the BF16 weights), deletes the BF16 download, and reads back bit for bit', async () => {
    const store = openModelStore({ fetch: hubFetch(loadDir(ORIGINAL), DIR), locks: undefined });
    const id = modelIdFromUrl(DIR);
    const bf16 = await store.fetchModel(DIR);
    const bf16Bytes = await store.size(id);
    const progress: number[] = [];
    const df11 = await storeCompressed(store, id, DIR, bf16, { encoder: inThreadEncoder, onUnit: (p) => progress.push(p.index + 1) });
    expect(progress).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await expectOriginal(df11);
    expect(await store.isComplete(id)).toBe(false);
    expect((await store.list()).map((m) => m.id)).toEqual([compressedId(id)]);
    const ratio = (await store.size(compressedId(id))) / bf16Bytes;
    expect(ratio).toBeGreaterThan(0.6);
    expect(ratio).toBeLessThan(0.72);
  });

  it('a remote BF16 repo is compressed while it downloads: only DF11 is ever stored, each weight byte is fetched once', async () => {
    const files = loadDir(ORIGINAL);
    const fetched = rangeLog();
    const store = openModelStore({ fetch: hubFetch(files, DIR, fetched.add), locks: undefined });
    const stored: string[][] = [];
    const seen: Array<Promise<void>> = [];
    const df11 = await fetchCompressed(store, DIR, {
      encoder: () => inThreadEncoder,
      onUnit: () => seen.push(store.list().then((list) => void stored.push(list.map((m) => m.id)))),
    });
    await Promise.all(seen);
    const id = modelIdFromUrl(DIR);
    expect(stored).toHaveLength(10);
    for (const ids of stored) expect(ids).toEqual([compressedId(id)]); // never the BF16 download
    await expectOriginal(df11);
    const weights = await tensorRanges(files.get('model.safetensors')!);
    expect(fetched.bytesOf('model.safetensors')).toBe(weights.dataBytes + 8 + weights.headerBytes);
    // A later load reads the stored DF11 copy and touches the network no more.
    fetched.clear();
    await fetchCompressed(store, DIR, { encoder: () => countingEncoder(0) });
    expect(fetched.requests).toEqual([]);
  });

  it('a run stopped after 4 units resumes with the other 6, fetching none of the stored units\' bytes again', async () => {
    const files = loadDir(ORIGINAL);
    const fetched = rangeLog();
    const store = openModelStore({ fetch: hubFetch(files, DIR, fetched.add), locks: undefined });
    const id = modelIdFromUrl(DIR);
    const first = countingEncoder(4);
    await expect(fetchCompressed(store, DIR, { encoder: () => first })).rejects.toThrow('tab closed');
    expect(first.encoded).toHaveLength(4);
    expect((await store.list()).map((m) => [m.id, m.state, m.filesComplete])).toEqual([[compressedId(id), 'downloading', 4]]);

    fetched.clear();
    const second = countingEncoder();
    const df11 = await fetchCompressed(store, DIR, { encoder: () => second });
    expect(second.encoded).toHaveLength(6);
    expect(second.encoded.some((u) => first.encoded.includes(u))).toBe(false);
    // No byte of a tensor of the 4 stored units was requested again.
    const { tensors } = await tensorRanges(files.get('model.safetensors')!);
    const storedUnitBytes = [...tensors].filter(([name]) => first.encoded.some((u) => name.startsWith(`${u}.`)));
    expect(storedUnitBytes.length).toBeGreaterThanOrEqual(4 * 7);
    for (const [name, [begin, end]] of storedUnitBytes) {
      for (const [b, e] of fetched.ranges('model.safetensors')) expect(e <= begin || b >= end, name).toBe(true);
    }
    await expectOriginal(df11);
  });
});

/** Records the requests a fetch makes and the byte ranges asked for, per file. */
function rangeLog() {
  const requests: Array<{ file: string; range: [number, number] | null }> = [];
  return {
    requests,
    add: (url: string, init?: RequestInit): void => {
      const r = /^bytes=(\d+)-(\d+)$/.exec(new Headers(init?.headers).get('range') ?? '');
      requests.push({ file: url.slice(DIR.length), range: r ? [Number(r[1]), Number(r[2]) + 1] : null });
    },
    clear: (): void => void requests.splice(0),
    ranges: (file: string): Array<[number, number]> => requests.filter((r) => r.file === file && r.range).map((r) => r.range!),
    bytesOf(file: string): number {
      return this.ranges(file).reduce((a, [b, e]) => a + e - b, 0);
    },
  };
}

/** Each tensor's byte range in a safetensors file, the data bytes, and the header's length. */
async function tensorRanges(data: Uint8Array): Promise<{ tensors: Map<string, [number, number]>; dataBytes: number; headerBytes: number }> {
  const file = await SafetensorsFile.open(bufferSource(data), 'model.safetensors');
  const tensors = new Map([...file.tensors].map(([name, t]) => [name, [t.offset, t.offset + t.byteLength] as [number, number]]));
  const headerBytes = Number(new DataView(data.buffer, data.byteOffset, 8).getBigUint64(0, true));
  return { tensors, dataBytes: data.length - 8 - headerBytes, headerBytes };
}
