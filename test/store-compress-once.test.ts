/** Compress once: a stored BF16 download becomes a stored DF11 copy, resumable per unit; the BF16 bytes go. */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { beforeEach, describe, expect, it } from 'vitest';
import { openModel } from '../src/format/model-reader.ts';
import { inThreadEncoder, type UnitEncoder } from '../src/format/unit-encoder.ts';
import { compressedId, storeCompressed } from '../src/store/compress-once.ts';
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

  it('a run stopped after 4 units resumes with the other 6 and gives the same model', async () => {
    const store = openModelStore({ fetch: hubFetch(loadDir(ORIGINAL), DIR), locks: undefined });
    const id = modelIdFromUrl(DIR);
    const bf16 = await store.fetchModel(DIR);
    const first = countingEncoder(4);
    await expect(storeCompressed(store, id, DIR, bf16, { encoder: first })).rejects.toThrow('tab closed');
    expect(first.encoded).toHaveLength(4);
    expect(await store.isComplete(compressedId(id))).toBe(false);
    const second = countingEncoder();
    const df11 = await storeCompressed(store, id, DIR, await store.fetchModel(DIR), { encoder: second });
    expect(second.encoded).toHaveLength(6);
    expect(second.encoded.some((u) => first.encoded.includes(u))).toBe(false);
    await expectOriginal(df11);
  });
});
