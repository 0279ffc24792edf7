// The model store in Node: fake-indexeddb for IndexedDB, the fault-injecting server from e2e/server for HTTP.
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFaultServer, type FaultServer } from '../e2e/server/fault-server.ts';
import { isDf11Error } from '../src/errors.ts';
import type { ModelFiles } from '../src/format/byte-source.ts';
import { listRemoteFiles } from '../src/store/listing.ts';
import { gemma3Multimodal } from './gemma3-multimodal.ts';
import { hfResolveUrl, modelIdFromUrl, openModelStore, type DownloadProgress } from '../src/store/model-store.ts';
import { Records } from '../src/store/records.ts';
import { nodeHttpFetch } from './store-node-fetch.ts';

const GENERATED = resolve('public/models/stories-micro-df11');
const ROOT = existsSync(GENERATED) ? GENERATED : resolve('test/fixtures/official-df11/stories-15m');
/** Small chunks so every file spans several records. */
const CHUNK = 16 * 1024;

let server: FaultServer;
let url: string;
let total: number;

beforeAll(async () => {
  server = await startFaultServer(ROOT);
  url = `${server.origin}/m/stories/`;
  total = [...server.files.values()].reduce((s, d) => s + d.length, 0);
});
afterAll(() => server.close());
beforeEach(() => {
  globalThis.indexedDB = new IDBFactory();
  server.reset();
});

async function expectSameBytes(files: ModelFiles): Promise<void> {
  expect((await files.list()).sort()).toEqual([...server.files.keys()].sort());
  for (const [name, data] of server.files) {
    const source = await files.open(name);
    expect(source.size).toBe(data.length);
    // An awkward range across chunk boundaries, then the whole file.
    const a = Math.min(1000, data.length);
    const b = Math.min(a + CHUNK + 123, data.length);
    expect(Buffer.from(await source.read(a, b)).equals(Buffer.from(data.subarray(a, b)))).toBe(true);
    expect(Buffer.from(await source.read(0, data.length)).equals(Buffer.from(data))).toBe(true);
  }
}

describe('model store (Node, fake-indexeddb)', () => {
  it('lists a DF11 directory from its config, downloads with progress, and lists/sizes/deletes', async () => {
    const store = openModelStore({ fetch: nodeHttpFetch().fetch });
    const events: DownloadProgress[] = [];
    const files = await store.fetchModel(url, { chunkBytes: CHUNK, onProgress: (p) => events.push(p) });
    await expectSameBytes(files);
    const last = events.at(-1)!;
    expect(last.bytesTotal).toBe(total);
    expect(last.bytesDone).toBe(total);
    expect(events.every((e, i) => i === 0 || e.bytesDone >= events[i - 1].bytesDone)).toBe(true);
    expect(events.some((e) => e.bytesPerSecond > 0)).toBe(true);
    // Config-derived listing (config.json read, HEADs for sizes), then each file fetched once without Range.
    const gets = server.requests().filter((r) => r.method === 'GET' && server.files.has(r.file));
    expect(gets.map((r) => r.file).sort()).toEqual(['config.json', ...server.files.keys()].sort());
    expect(gets.every((r) => r.range === null)).toBe(true);
    expect(server.bytesSent()).toBeLessThan(total * 1.01);

    const id = modelIdFromUrl(url);
    expect(await store.list()).toEqual([
      { id, sourceUrl: url, state: 'complete', bytesTotal: total, filesComplete: server.files.size, filesTotal: server.files.size },
    ]);
    expect(await store.size(id)).toBe(total);
    server.reset();
    await store.fetchModel(url);
    expect(server.requests()).toEqual([]); // complete: no network at all
    await store.delete(id);
    expect(await store.list()).toEqual([]);
    expect(await store.size(id)).toBe(0);
    expect(await Records.open().chunkIndices(id, 'config.json')).toEqual([]);
  });

  it('uses a listed files.json and its SHA-256 values', async () => {
    server.configure({ filesJson: true, linkedEtag: false });
    const files = await openModelStore({ fetch: nodeHttpFetch().fetch }).fetchModel(url, { chunkBytes: CHUNK });
    await expectSameBytes(files);
    expect(server.requests().filter((r) => r.method === 'HEAD')).toEqual([]);
  });

  it('resumes after a dropped connection with Range requests, fetching < 1.2x the model', async () => {
    const http = nodeHttpFetch();
    const store = openModelStore({ fetch: http.fetch });
    server.configure({ dropAfterBytes: Math.floor(total * 0.45) });
    const first = await store.fetchModel(url, { chunkBytes: CHUNK, retries: 0 }).catch((e: unknown) => e);
    expect(isDf11Error(first, 'network')).toBe(true);
    expect((await store.list())[0].state).toBe('downloading');
    expect(await store.size(modelIdFromUrl(url))).toBeGreaterThan(0);
    const files = await store.fetchModel(url, { chunkBytes: CHUNK, retries: 0 });
    await expectSameBytes(files);
    expect(http.received()).toBeLessThan(total * 1.2);
    expect(server.requests().some((r) => r.method === 'GET' && r.status === 206)).toBe(true);
  });

  it('refetches a whole file when the server ignores Range on resume', async () => {
    const store = openModelStore({ fetch: nodeHttpFetch().fetch });
    server.configure({ dropAfterBytes: Math.floor(total * 0.45) });
    await store.fetchModel(url, { chunkBytes: CHUNK, retries: 0 }).catch(() => undefined);
    server.configure({ ignoreRange: true });
    const files = await store.fetchModel(url, { chunkBytes: CHUNK, retries: 0 });
    await expectSameBytes(files);
    const ranged = server.requests().filter((r) => r.range !== null);
    expect(ranged.length).toBeGreaterThan(0);
    expect(ranged.every((r) => r.status === 200)).toBe(true);
  });

  it('detects a byte corrupted in transit (X-Linked-Etag) and refetches the file', async () => {
    const [name, data] = [...server.files].sort((a, b) => b[1].length - a[1].length)[0];
    server.configure({ corruptOnce: { file: name, offset: Math.floor(data.length / 2) } });
    const files = await openModelStore({ fetch: nodeHttpFetch().fetch }).fetchModel(url, { chunkBytes: CHUNK });
    await expectSameBytes(files);
    expect(server.requests().filter((r) => r.method === 'GET' && r.file === name).length).toBe(2);
  });

  it('gives up with a typed integrity error when the corruption persists past the retries', async () => {
    const [name, data] = [...server.files].sort((a, b) => b[1].length - a[1].length)[0];
    server.configure({ corruptOnce: { file: name, offset: 7 } });
    const error = await openModelStore({ fetch: nodeHttpFetch().fetch })
      .fetchModel(url, { chunkBytes: CHUNK, retries: 0 })
      .catch((e: unknown) => e);
    expect(isDf11Error(error, 'integrity')).toBe(true);
    expect(data.length).toBeGreaterThan(7);
  });

  it('finds a damaged or missing stored chunk, refetches just that chunk, never returns bad bytes', async () => {
    const store = openModelStore({ fetch: nodeHttpFetch().fetch });
    await store.fetchModel(url, { chunkBytes: CHUNK });
    const id = modelIdFromUrl(url);
    const [name, data] = [...server.files].sort((a, b) => b[1].length - a[1].length)[0];
    const records = Records.open();
    const record = (await records.getChunk(id, name, 1))!;
    const bad = new Uint8Array(record.data.slice(0));
    bad[10] ^= 1;
    await records.putChunk(id, name, 1, { ...record, data: bad.buffer });
    server.reset();
    const source = await (await store.open(id)).open(name);
    const got = await source.read(CHUNK - 5, CHUNK + 20);
    expect(Buffer.from(got).equals(Buffer.from(data.subarray(CHUNK - 5, CHUNK + 20)))).toBe(true);
    expect(server.requests()).toMatchObject([{ method: 'GET', file: name, range: `bytes=${CHUNK}-${2 * CHUNK - 1}`, status: 206 }]);

    // A missing chunk is found by verify() and refetched the same way.
    await records.putChunk(id, name, 2, { ...record, data: new ArrayBuffer(3) });
    expect(await store.verify(id)).toBe(1);
    expect(await store.verify(id)).toBe(0);
  });

  it('turns QuotaExceededError into a typed error and leaves the download resumable', async () => {
    const store = openModelStore({ fetch: nodeHttpFetch().fetch });
    const proto = (globalThis as unknown as { IDBObjectStore: { prototype: { put: (...a: unknown[]) => unknown } } }).IDBObjectStore.prototype;
    const put = proto.put;
    let writes = 0;
    proto.put = function (this: unknown, ...args: unknown[]) {
      if (++writes > 12) throw new DOMException('quota', 'QuotaExceededError');
      return put.apply(this, args);
    };
    let error: unknown;
    try {
      error = await store.fetchModel(url, { chunkBytes: CHUNK }).catch((e: unknown) => e);
    } finally {
      proto.put = put;
    }
    expect(isDf11Error(error, 'quota-exceeded')).toBe(true);
    expect((await store.list())[0].state).toBe('downloading');
    server.reset();
    await expectSameBytes(await store.fetchModel(url));
    expect(server.bytesSent()).toBeLessThan(total);
  });

  it('cancels with an AbortSignal', async () => {
    const store = openModelStore({ fetch: nodeHttpFetch().fetch });
    const controller = new AbortController();
    // Abort at a known step: once the server has sent 1 MiB, mid-way through the weights.
    server.configure({ afterPiece: (sent) => sent >= 2 ** 20 && controller.abort() });
    const error = await store.fetchModel(url, { chunkBytes: CHUNK, signal: controller.signal }).catch((e: unknown) => e);
    expect(isDf11Error(error, 'aborted')).toBe(true);
    expect((await store.list())[0].state).toBe('downloading');
  });
});

describe('model directory listing', () => {
  it('names Hugging Face models by repo and revision', () => {
    const dir = hfResolveUrl('DFloat11/Llama-3.1-8B-Instruct-DF11');
    expect(dir).toBe('https://huggingface.co/DFloat11/Llama-3.1-8B-Instruct-DF11/resolve/main/');
    expect(modelIdFromUrl(dir)).toBe('hf:DFloat11/Llama-3.1-8B-Instruct-DF11@main');
    expect(modelIdFromUrl('http://127.0.0.1:9/DFloat11/x/resolve/main/')).toBe('http://127.0.0.1:9/DFloat11/x/resolve/main');
    expect(() => hfResolveUrl('not a repo')).toThrow(/repo id/);
  });

  it('lists a single-file BF16 directory, and a sharded one from its index', async () => {
    const single = await startFaultServer(resolve('models/stories-15m'));
    try {
      const files = await listRemoteFiles(`${single.origin}/a/b/`, nodeHttpFetch().fetch);
      const want = ['config.json', 'model.safetensors', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json'];
      expect(files.map((f) => f.name)).toEqual(want);
      for (const f of files) expect(f.size).toBe(single.files.get(f.name)!.length);
      expect(files.every((f) => f.sha256 !== null)).toBe(true); // from X-Linked-Etag
    } finally {
      await single.close();
    }
    const dir = mkdtempSync(join(tmpdir(), 'df11-sharded-'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama' }));
    const weightMap = { 'a.weight': 'model-00001-of-00002.safetensors', 'b.weight': 'model-00002-of-00002.safetensors', 'c.weight': 'model-00002-of-00002.safetensors' };
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: weightMap }));
    writeFileSync(join(dir, 'model-00001-of-00002.safetensors'), new Uint8Array(1000));
    writeFileSync(join(dir, 'model-00002-of-00002.safetensors'), new Uint8Array(777));
    const sharded = await startFaultServer(dir);
    try {
      const files = await listRemoteFiles(`${sharded.origin}/s/`, nodeHttpFetch().fetch);
      expect(files.map((f) => [f.name, f.size])).toEqual([
        ['config.json', sharded.files.get('config.json')!.length],
        ['model.safetensors.index.json', sharded.files.get('model.safetensors.index.json')!.length],
        ['model-00001-of-00002.safetensors', 1000],
        ['model-00002-of-00002.safetensors', 777],
      ]);
    } finally {
      await sharded.close();
    }
  });

  it('lists only the text model of a Gemma 3 multimodal checkpoint (sharded BF16, and DF11 units named as stored)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'df11-gemma3-'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'gemma3', text_config: { model_type: 'gemma3_text' } }));
    const weightMap = {
      'language_model.model.layers.0.mlp.up_proj.weight': 'model-00001-of-00002.safetensors',
      'vision_tower.vision_model.post_layernorm.weight': 'model-00002-of-00002.safetensors',
      'multi_modal_projector.mm_input_projection_weight': 'model-00002-of-00002.safetensors',
    };
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: weightMap }));
    writeFileSync(join(dir, 'model-00001-of-00002.safetensors'), new Uint8Array(10));
    writeFileSync(join(dir, 'model-00002-of-00002.safetensors'), new Uint8Array(20));
    const sharded = await startFaultServer(dir);
    try {
      const files = await listRemoteFiles(`${sharded.origin}/g/`, nodeHttpFetch().fetch);
      expect(files.map((f) => f.name)).toEqual(['config.json', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors']);
    } finally {
      await sharded.close();
    }
    const df11Dir = mkdtempSync(join(tmpdir(), 'df11-gemma3-df11-'));
    for (const [name, data] of await gemma3Multimodal('df11')) writeFileSync(join(df11Dir, name), data);
    const df11 = await startFaultServer(df11Dir);
    try {
      const names = (await listRemoteFiles(`${df11.origin}/d/`, nodeHttpFetch().fetch)).map((f) => f.name);
      expect(names).toEqual(expect.arrayContaining(['language_model_model_embed_tokens.safetensors', 'language_model_model_layers_6.safetensors', 'model.safetensors']));
      expect(names.filter((n) => n.startsWith('language_model_'))).toHaveLength(8);
    } finally {
      await df11.close();
    }
  });

  it('reports a missing required file as a typed network error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'df11-missing-'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama' }));
    const empty = await startFaultServer(dir);
    try {
      const error = await listRemoteFiles(`${empty.origin}/x/`, nodeHttpFetch().fetch).catch((e: unknown) => e);
      expect(isDf11Error(error, 'network')).toBe(true);
      expect((error as Error).message).toMatch(/model\.safetensors not found/);
    } finally {
      await empty.close();
    }
  });
});
