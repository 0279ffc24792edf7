// Eviction at load and one download per model across stores (issue 15): fake-indexeddb, the fault server.
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFaultServer, type FaultServer } from '../e2e/server/fault-server.ts';
import { modelIdFromUrl, openModelStore, type EvictedChunks } from '../src/store/model-store.ts';
import { createStore, del } from 'idb-keyval';
import { CHUNK_DB, Records } from '../src/store/records.ts';
import { nodeHttpFetch } from './store-node-fetch.ts';

const GENERATED = resolve('public/models/stories-micro-df11');
const ROOT = existsSync(GENERATED) ? GENERATED : resolve('test/fixtures/official-df11/stories-15m');
const CHUNK = 16 * 1024;

let server: FaultServer;
let url: string;

beforeAll(async () => {
  server = await startFaultServer(ROOT);
  url = `${server.origin}/m/stories/`;
});
afterAll(() => server.close());
beforeEach(() => {
  globalThis.indexedDB = new IDBFactory();
  server.reset();
});

/** A LockManager for one process: exclusive locks by name, granted in request order (what tabs share). */
function fakeLocks(): Pick<LockManager, 'request'> & { granted: string[] } {
  const tails = new Map<string, Promise<unknown>>();
  const granted: string[] = [];
  return {
    granted,
    request: ((name: string, callback: (lock: Lock | null) => Promise<unknown>) => {
      const prev = tails.get(name) ?? Promise.resolve();
      const run = prev.then(() => {
        granted.push(name);
        return callback({ name, mode: 'exclusive' } as Lock);
      });
      tails.set(name, run.catch(() => undefined));
      return run;
    }) as LockManager['request'],
  };
}

async function readAll(files: Awaited<ReturnType<ReturnType<typeof openModelStore>['fetchModel']>>): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of await files.list()) {
    const source = await files.open(name);
    out.set(name, Buffer.from(await source.read(0, source.size)));
  }
  return out;
}

describe('eviction at load', () => {
  it('a complete model whose chunks are gone: only the missing chunks are downloaded again, with a notice', async () => {
    const store = openModelStore({ fetch: nodeHttpFetch().fetch });
    await store.fetchModel(url, { chunkBytes: CHUNK });
    const id = modelIdFromUrl(url);
    const [big, bigData] = [...server.files].sort((a, b) => b[1].length - a[1].length)[0];
    const records = Records.open();
    const chunks = await records.chunkIndices(id, big);
    expect(chunks.length).toBeGreaterThan(3);
    // evict chunks 1 and 3 of the largest file, and every chunk of config.json
    const chunkDb = createStore(CHUNK_DB, 'chunks');
    const raw = (key: [string, string, number]) => del(key, chunkDb);
    await raw([id, big, 1]);
    await raw([id, big, 3]);
    await raw([id, 'config.json', 0]);
    expect(await records.chunkIndices(id, big)).toHaveLength(chunks.length - 2);
    server.reset();
    const notices: EvictedChunks[] = [];
    const files = await openModelStore({ fetch: nodeHttpFetch().fetch }).fetchModel(url, { chunkBytes: CHUNK, onEvicted: (e) => notices.push(e) });
    expect(notices).toEqual([{ files: expect.arrayContaining([big, 'config.json']), chunks: 3, bytes: 2 * CHUNK + server.files.get('config.json')!.length }]);
    const requests = server.requests();
    expect(requests).toHaveLength(3);
    expect(requests.filter((r) => r.file === big).map((r) => r.range).sort()).toEqual([`bytes=${CHUNK}-${2 * CHUNK - 1}`, `bytes=${3 * CHUNK}-${4 * CHUNK - 1}`]);
    expect(await records.chunkIndices(id, big)).toHaveLength(chunks.length);
    // the bytes are right, and a further load touches no network
    expect((await readAll(files)).get(big)!.equals(Buffer.from(bigData))).toBe(true);
    server.reset();
    await openModelStore({ fetch: nodeHttpFetch().fetch }).fetchModel(url, { onEvicted: (e) => notices.push(e) });
    expect(server.requests()).toEqual([]);
    expect(notices).toHaveLength(1);
  });
});

describe('one download per model (Web Locks)', () => {
  it('two stores (two tabs) loading the same model at once: one set of network fetches, both get the model', async () => {
    const locks = fakeLocks();
    const a = openModelStore({ fetch: nodeHttpFetch().fetch, locks });
    const b = openModelStore({ fetch: nodeHttpFetch().fetch, locks });
    const [fa, fb] = await Promise.all([a.fetchModel(url, { chunkBytes: CHUNK }), b.fetchModel(url, { chunkBytes: CHUNK })]);
    const gets = server.requests().filter((r) => r.method === 'GET' && !r.file.endsWith('.json'));
    // every weight file fetched exactly once
    const weightFiles = [...server.files.keys()].filter((n) => n.endsWith('.safetensors'));
    expect(gets.map((r) => r.file).sort()).toEqual(weightFiles.sort());
    expect(locks.granted).toEqual([`df11-model:${modelIdFromUrl(url)}`, `df11-model:${modelIdFromUrl(url)}`]);
    const [ra, rb] = [await readAll(fa), await readAll(fb)];
    for (const [name, data] of server.files) {
      expect(ra.get(name)!.equals(Buffer.from(data)), name).toBe(true);
      expect(rb.get(name)!.equals(Buffer.from(data)), name).toBe(true);
    }
  });

  it('without locks the same race downloads twice (what the lock prevents)', async () => {
    const a = openModelStore({ fetch: nodeHttpFetch().fetch });
    const b = openModelStore({ fetch: nodeHttpFetch().fetch });
    await Promise.all([a.fetchModel(url, { chunkBytes: CHUNK }), b.fetchModel(url, { chunkBytes: CHUNK })]);
    const gets = server.requests().filter((r) => r.method === 'GET' && r.file.endsWith('.safetensors'));
    expect(gets.length).toBeGreaterThan([...server.files.keys()].filter((n) => n.endsWith('.safetensors')).length);
  });
});
