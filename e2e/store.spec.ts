// The IndexedDB model store in Chromium, against the fault-injecting server (its own port, cross-origin
// from the harness page on 4173): progress, resume after a dropped connection or a closed tab, Range
// ignored, corruption in transit and on disk, quota failures, and loading with the network blocked.
import { expect, test, type Page } from '@playwright/test';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type {} from '../test-pages/store.ts'; // window.df11Store
import { startFaultServer, type FaultServer } from './server/fault-server.ts';

const GENERATED = resolve('public/models/stories-15m-df11');
const ROOT = existsSync(GENERATED) ? GENERATED : resolve('test/fixtures/official-df11/stories-15m');

let server: FaultServer;
let total = 0;
let expected: Record<string, string> = {};
/** Hugging Face-shaped directory URL on the test server. */
let url = '';
let id = '';

test.beforeAll(async () => {
  server = await startFaultServer(ROOT);
  url = `${server.origin}/DFloat11/stories-15m-DF11/resolve/main/`;
  id = url.slice(0, -1);
  for (const [name, data] of server.files) {
    total += data.length;
    expected[name] = createHash('sha256').update(data).digest('hex');
  }
});
test.afterAll(() => server.close());
test.beforeEach(() => server.reset());

async function openHarness(page: Page): Promise<void> {
  await page.goto('/test-pages/store.html');
  await expect(page.locator('#state')).toHaveAttribute('data-state', 'ready');
}

function download(page: Page, options: Record<string, unknown> = {}) {
  return page.evaluate(([u, o]) => window.df11Store.download(u, o), [url, options] as const);
}

/** The store's chunk size (the corruption test's Range requests show it). */
const CHUNK = 1 << 20;

/** Bytes the store can hold of what the server has sent: whole files, and the whole chunks of the others. */
function storable(): number {
  const sent = new Map<string, number>(); // a file may be fetched twice (config.json: manifest, then download)
  for (const r of server.requests()) if (r.method === 'GET') sent.set(r.file, Math.max(sent.get(r.file) ?? 0, r.bytes));
  let bytes = 0;
  for (const [file, n] of sent) bytes += n === server.files.get(file)?.length ? n : Math.floor(n / CHUNK) * CHUNK;
  return bytes;
}

/**
 * A download (no retries) whose network stalls past 45% of the model, each open file once it has sent 1.25
 * chunks, and is cut once the store holds all it can of what was sent: explicit steps, so what is stored
 * (every file in flight has a chunk to resume from) does not depend on the machine's speed.
 */
async function downloadUntilCut(page: Page) {
  server.configure({ stall: { afterBytes: Math.floor(total * 0.45), responseBytes: 1.25 * CHUNK } });
  const report = download(page, { retries: 0 });
  const size = () => page.evaluate((i) => window.df11Store.store.size(i), id);
  await expect.poll(async () => server.allStalled() && (await size()) === storable(), { timeout: 60_000 }).toBe(true);
  server.configure({ stall: null, dropAfterBytes: 0 });
  return report;
}

async function expectStoredModel(page: Page): Promise<void> {
  expect(await page.evaluate((i) => window.df11Store.digests(i), id)).toEqual(expected);
}

test('downloads the default DF11 model with typed progress, then lists, sizes and deletes it', async ({ page }) => {
  await page.addInitScript(() => {
    const persist = StorageManager.prototype.persist;
    (window as unknown as { persistCalls: number }).persistCalls = 0;
    StorageManager.prototype.persist = function () {
      (window as unknown as { persistCalls: number }).persistCalls++;
      return persist.call(this);
    };
  });
  await openHarness(page);
  const report = await download(page);
  expect(report.error).toBeNull();
  expect(report.files.sort()).toEqual(Object.keys(expected).sort());
  const last = report.events.at(-1)!;
  expect(last.bytesDone).toBe(total);
  expect(last.bytesTotal).toBe(total);
  expect(last.etaSeconds).toBe(0);
  expect(report.events.length).toBeGreaterThan(server.files.size);
  expect(report.events.every((e, i) => i === 0 || e.bytesDone >= report.events[i - 1].bytesDone)).toBe(true);
  expect(report.events.some((e) => e.bytesPerSecond > 0 && e.etaSeconds !== null && e.etaSeconds > 0)).toBe(true);
  for (const e of report.events) expect(e.fileBytesDone).toBeLessThanOrEqual(e.fileBytesTotal);
  // Several files were in flight at once: progress of other files arrives before a file finishes.
  const firstDone = report.events.findIndex((e) => e.fileBytesDone === e.fileBytesTotal && e.fileBytesTotal > 1 << 20);
  expect(new Set(report.events.slice(0, firstDone).map((e) => e.file)).size).toBeGreaterThan(1);
  await expectStoredModel(page);
  expect(server.bytesSent()).toBeLessThan(total * 1.01);

  // GPU upload straight from IndexedDB, unit by unit: JS holds at most one unit plus one chunk.
  const upload = await page.evaluate((i) => window.df11Store.uploadUnits(i), id);
  console.log(`browser unit upload: ${JSON.stringify(upload)}`);
  expect(upload.units).toBe(10);
  expect(upload.peak).toBeLessThanOrEqual(upload.largestUnit + upload.chunkBytes);
  expect(upload.peak).toBeGreaterThan(upload.largestUnit);

  // The real navigator.storage.estimate() path let it through, and persistence was requested.
  const estimate = await page.evaluate(() => navigator.storage.estimate());
  expect(estimate.quota!).toBeGreaterThan(total);
  expect(estimate.usage!).toBeGreaterThan(0);
  expect(await page.evaluate(() => (window as unknown as { persistCalls: number }).persistCalls)).toBeGreaterThan(0);

  const list = await page.evaluate(() => window.df11Store.store.list());
  expect(list).toEqual([{ id, sourceUrl: url, state: 'complete', bytesTotal: total, filesComplete: server.files.size, filesTotal: server.files.size }]);
  expect(await page.evaluate((i) => window.df11Store.store.size(i), id)).toBe(total);
  await page.evaluate((i) => window.df11Store.store.delete(i), id);
  expect(await page.evaluate(() => window.df11Store.store.list())).toEqual([]);
  expect(await page.evaluate((i) => window.df11Store.store.size(i), id)).toBe(0);
});

test('resumes with Range requests after the connection drops, fetching < 1.2x the model', async ({ page }) => {
  await openHarness(page);
  const first = await downloadUntilCut(page);
  expect(first.error?.code).toBe('network');
  expect((await page.evaluate(() => window.df11Store.store.list()))[0].state).toBe('downloading');
  const stored = await page.evaluate((i) => window.df11Store.store.size(i), id);
  expect(stored).toBeGreaterThan(total * 0.2);

  const second = await download(page, { retries: 0 });
  expect(second.error).toBeNull();
  expect(second.events[0].bytesDone).toBeGreaterThanOrEqual(stored - (1 << 20) * 3);
  await expectStoredModel(page);
  const ranged = server.requests().filter((r) => r.method === 'GET' && r.range !== null);
  expect(ranged.length).toBeGreaterThan(0);
  expect(ranged.every((r) => r.status === 206)).toBe(true);
  console.log(`drop + resume: ${server.bytesSent()} bytes sent for a ${total}-byte model (${(server.bytesSent() / total).toFixed(3)}x)`);
  expect(server.bytesSent()).toBeLessThan(total * 1.2);
});

test('resumes after the tab is closed mid-download, fetching only what was not stored', async ({ page, context }) => {
  await openHarness(page);
  // the network stalls at 60%, so the tab is closed mid-download whatever the machine's speed
  server.configure({ stall: { afterBytes: Math.floor(total * 0.6), responseBytes: 0 } });
  void download(page).catch(() => undefined);
  await expect
    .poll(async () => (await page.evaluate(() => window.df11Store.latest()))?.bytesDone ?? 0, { timeout: 60_000 })
    .toBeGreaterThan(total * 0.35);
  await page.close();
  server.configure({ stall: null });
  const firstRequests = server.requests().length;

  const next = await context.newPage();
  await openHarness(next);
  const stored = await next.evaluate((i) => window.df11Store.store.size(i), id);
  expect(stored).toBeGreaterThan(total * 0.2);
  const report = await next.evaluate((u) => window.df11Store.download(u), url);
  expect(report.error).toBeNull();
  expect(report.events[0].bytesDone).toBeGreaterThanOrEqual(stored);
  await expectStoredModel(next);
  // The new tab fetches exactly the bytes the closed one had not stored (Range from each file's last chunk).
  const fetched = server.requests().slice(firstRequests).reduce((sum, r) => sum + r.bytes, 0);
  expect(fetched).toBe(total - stored);
  console.log(
    `tab closed + resume: ${stored} bytes were stored, ${fetched} fetched after reopening; ` +
      `${server.bytesSent()} in all for a ${total}-byte model (${(server.bytesSent() / total).toFixed(3)}x, the excess is what the closed tab had received but not yet written)`,
  );
});

test('refetches whole files when the server ignores Range on resume', async ({ page }) => {
  await openHarness(page);
  expect((await downloadUntilCut(page)).error?.code).toBe('network');
  server.configure({ ignoreRange: true });
  expect((await download(page, { retries: 0 })).error).toBeNull();
  await expectStoredModel(page);
  const ranged = server.requests().filter((r) => r.method === 'GET' && r.range !== null);
  expect(ranged.length).toBeGreaterThan(0);
  expect(ranged.every((r) => r.status === 200)).toBe(true);
});

test('a byte corrupted in transit is caught by SHA-256 and the file refetched; a damaged stored chunk is refetched alone', async ({ page }) => {
  await openHarness(page);
  const [name, data] = [...server.files].sort((a, b) => b[1].length - a[1].length)[0];
  server.configure({ corruptOnce: { file: name, offset: Math.floor(data.length * 0.6) } });
  expect((await download(page)).error).toBeNull();
  expect(server.requests().filter((r) => r.method === 'GET' && r.file === name)).toHaveLength(2);
  await expectStoredModel(page);

  server.reset();
  await page.evaluate(([i, n]) => window.df11Store.corruptChunk(i, n, 1), [id, name] as const);
  await expectStoredModel(page); // reads verify every chunk: the damaged one is refetched, never returned
  expect(server.requests()).toMatchObject([{ method: 'GET', file: name, range: `bytes=${1 << 20}-${(2 << 20) - 1}`, status: 206 }]);
  expect(await page.evaluate((i) => window.df11Store.store.verify(i), id)).toBe(0);
});

test('refuses a model that does not fit the storage estimate, before downloading any weights', async ({ page }) => {
  await page.addInitScript(() => {
    StorageManager.prototype.estimate = async () => ({ quota: 8_000_000, usage: 1_000_000 });
  });
  await openHarness(page);
  const report = await download(page);
  expect(report.error?.code).toBe('quota-exceeded');
  expect(report.error?.message).toMatch(/needs [\d.]+ MB more storage, but only 7\.0 MB/);
  expect(server.requests().filter((r) => r.method === 'GET' && r.file.endsWith('.safetensors'))).toEqual([]);
});

test('QuotaExceededError while writing gives the typed error, nothing complete, and the download resumes', async ({ page }) => {
  await openHarness(page);
  await page.evaluate(() => window.df11Store.failWritesAfter(8));
  const failed = await download(page);
  expect(failed.error?.code).toBe('quota-exceeded');
  await page.evaluate(() => window.df11Store.restoreWrites());
  expect((await page.evaluate(() => window.df11Store.store.list()))[0].state).toBe('downloading');
  const before = server.bytesSent();
  const report = await download(page);
  expect(report.error).toBeNull();
  expect(report.events[0].bytesDone).toBeGreaterThan(0);
  await expectStoredModel(page);
  expect(server.bytesSent() - before).toBeLessThan(total);
});

test('after a reload the model loads from IndexedDB with the network blocked', async ({ page }) => {
  await openHarness(page);
  expect((await download(page)).error).toBeNull();
  await page.reload();
  await expect(page.locator('#state')).toHaveAttribute('data-state', 'ready');
  await page.route(`${server.origin}/**`, (route) => route.abort('internetdisconnected'));
  server.reset();
  const report = await download(page);
  expect(report.error).toBeNull();
  expect(report.events).toEqual([]);
  await expectStoredModel(page);
  expect(server.requests()).toEqual([]);
});

test('downloads a same-origin model directory listed in /models/index.json', async ({ page }) => {
  test.skip(!existsSync(resolve('dist/models/index.json')), 'no generated models in dist/');
  await openHarness(page);
  const report = await page.evaluate(() => window.df11Store.download('/models/stories-micro-df11/'));
  expect(report.error).toBeNull();
  const sameOrigin = `${new URL(page.url()).origin}/models/stories-micro-df11`;
  const digests = await page.evaluate((i) => window.df11Store.digests(i), sameOrigin);
  const micro = resolve('public/models/stories-micro-df11');
  const want = Object.fromEntries(
    readdirSync(micro).map((n) => [n, createHash('sha256').update(readFileSync(resolve(micro, n))).digest('hex')]),
  );
  expect(digests).toEqual(want);
});
