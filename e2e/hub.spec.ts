// Models from a hub: the demo against a local server shaped like Hugging Face (e2e/server/hub-server.ts:
// resolve paths, 302 to a CDN origin, X-Linked-Etag/X-Linked-Size, Range, a gated repo). stories-micro
// (BF16) keeps SwiftShader fast. The page's CSP allows https model origins only, so the test bypasses it
// for the two http://127.0.0.1 servers.
import { expect, test, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { readTextRefs } from '../src/testing/model-reference.ts';
import { answerText, QUESTION, send, setSettings, SLOW, waitReady } from './chat-helpers.ts';
import { bufferSource } from '../src/format/byte-source.ts';
import { SafetensorsFile } from '../src/format/safetensors.ts';
import { readReferenceTensors } from '../test/format-reference.ts';
import { layersOnly, loadDir, pickleRepo, singleFile, withBf16Index } from '../test/official-layouts.ts';
import { startHubServer, type HubServer } from './server/hub-server.ts';

test.use({ bypassCSP: true });

const micro = readTextRefs('models/stories-micro')[2]!;
const TOKEN = 'hf_e2e_token';
let hub: HubServer;

test.beforeAll(async () => {
  // The published-layout case in one repo: a v0.2.0 transformers-4.x config, layers-only units with the BF16
  // embedding and tied head (Qwen3-4B style), the BF16 original's index beside it, all in one
  // model.safetensors (save_single_file).
  const original = 'models/stories-micro/model.safetensors';
  const published = await singleFile(withBf16Index(await layersOnly(loadDir('public/models/stories-micro-df11'), original), [...readReferenceTensors(original).keys()]));
  for (const side of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) published.set(side, new Uint8Array(readFileSync(`models/stories-micro/${side}`)));
  hub = await startHubServer({
    'org/stories-micro': { dir: 'models/stories-micro' },
    'org/gated-micro': { dir: 'models/stories-micro', token: TOKEN },
    'DFloat11/stories-micro-DF11': { files: published },
    'DFloat11/pickles-v0.1': { files: pickleRepo() },
  });
});
test.afterAll(() => hub.close());
test.beforeEach(() => {
  hub.release();
  hub.reset();
});

const repoUrl = (repo: string): string => `${hub.hub}/${repo}/resolve/main/`;

/** Every stored manifest: id, state and bytes per file (read from IndexedDB directly). */
function manifests(page: Page) {
  return page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const r = indexedDB.open('df11-manifests-v1');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const all = await new Promise<Array<{ id: string; state: string; files: Array<{ name: string; size: number }> }>>((resolve) => {
      const r = db.transaction('manifests').objectStore('manifests').getAll();
      r.onsuccess = () => resolve(r.result);
    });
    db.close();
    return all.map((m) => ({ id: m.id, state: m.state, files: Object.fromEntries(m.files.map((f) => [f.name, f.size])) }));
  });
}

async function expectGreedyAnswer(page: Page): Promise<void> {
  await setSettings(page, { temperature: 0, maxTokens: 6 });
  const answer = await send(page, QUESTION);
  await expect(answer).toHaveAttribute('data-state', 'done', { timeout: SLOW });
  const text = await answerText(answer);
  expect(text.length).toBeGreaterThan(0);
  expect(micro.greedy_text.startsWith(text)).toBe(true);
}

test('a BF16 repo is compressed once into IndexedDB as DF11; the next load reads DF11 and compresses nothing', async ({ page }) => {
  test.setTimeout(SLOW);
  const url = repoUrl('org/stories-micro');
  await page.goto(`/?mode=bf16&model=${encodeURIComponent(url)}`);
  await waitReady(page);
  const stored = await manifests(page);
  expect(stored.map((m) => m.id)).toEqual([`${url.slice(0, -1)}#df11`]); // the BF16 download is gone
  expect(stored[0]!.state).toBe('complete');
  const df11Bytes = Object.entries(stored[0]!.files).filter(([n]) => n.endsWith('.safetensors')).reduce((a, [, s]) => a + s, 0);
  const bf16Bytes = hub.files.get('org/stories-micro')!.get('model.safetensors')!.length;
  console.log(`stories-micro: DF11 ${df11Bytes} B stored for ${bf16Bytes} B BF16 (${(df11Bytes / bf16Bytes).toFixed(3)}x)`);
  expect(df11Bytes / bf16Bytes).toBeGreaterThan(0.6);
  expect(df11Bytes / bf16Bytes).toBeLessThan(0.75);
  // Weights came through the 302 to the CDN origin, with the hub's linked headers.
  expect(hub.requests().some((r) => r.origin === 'cdn' && r.path.endsWith('model.safetensors'))).toBe(true);
  await expectGreedyAnswer(page);
  await expect(page.locator('#stored-models')).toContainText('#df11');

  hub.reset();
  await page.reload();
  await waitReady(page);
  // The second load touched no weight file (only the fit check's config.json).
  expect(hub.requests().filter((r) => !r.path.endsWith('config.json'))).toEqual([]);
  await expectGreedyAnswer(page);
});

test('a tab closed mid-compression resumes: the next load compresses and fetches only the units not stored yet', async ({ page, context }) => {
  test.setTimeout(SLOW);
  const url = repoUrl('org/stories-micro');
  // The CDN holds every read of the file from layer 1's first tensor on: the embedding and layer 0 get
  // compressed and stored, layer 1 (the last of the 3 units) cannot be, and the tab is closed then.
  const weights = await SafetensorsFile.open(bufferSource(hub.files.get('org/stories-micro')!.get('model.safetensors')!), 'model.safetensors');
  const tensors = [...weights.tensors.values()];
  const layer1 = Math.min(...tensors.filter((t) => t.name.startsWith('model.layers.1.')).map((t) => t.offset));
  const dataStart = Math.min(...tensors.map((t) => t.offset));
  for (const t of tensors.filter((x) => /^model\.(embed_tokens|layers\.0)\./.test(x.name))) expect(t.offset + t.byteLength).toBeLessThanOrEqual(layer1);
  const from = (r: { range: string | null }): number => Number(/^bytes=(\d+)-/.exec(r.range ?? '')?.[1] ?? NaN);
  hub.hold((r) => r.path.endsWith('/model.safetensors') && from(r) >= layer1);
  await page.goto(`/?mode=bf16&model=${encodeURIComponent(url)}`);
  await expect(page.locator('#load-status')).toContainText('unit 2 of 3', { timeout: SLOW });
  const partial = (await manifests(page)).find((m) => m.id.endsWith('#df11'))!;
  expect(partial.state).toBe('downloading');
  expect(Object.keys(partial.files).sort()).toEqual(['model_embed_tokens.safetensors', 'model_layers_0.safetensors']);
  expect((await manifests(page)).length).toBe(1); // no BF16 bytes stored
  await page.close();

  hub.release();
  hub.reset();
  const second = await context.newPage();
  // Every load-status text the new tab shows (each one a new text node).
  await second.addInitScript(() => {
    const shown: string[] = [];
    (window as unknown as { shownStatus: string[] }).shownStatus = shown;
    new MutationObserver((records) => {
      for (const r of records) if ((r.target as Element).id === 'load-status') for (const n of r.addedNodes) shown.push(n.textContent ?? '');
    }).observe(document, { subtree: true, childList: true });
  });
  await second.goto(`/?mode=bf16&model=${encodeURIComponent(url)}`);
  await waitReady(second);
  const compressed = (await second.evaluate(() => (window as unknown as { shownStatus: string[] }).shownStatus)).filter((t) => t.startsWith('Compressing'));
  expect(compressed.map((t) => /unit (\d+) of 3/.exec(t)?.[1])).toEqual(['3']);
  // Network: no byte of the two stored units was fetched again; layer 1's were.
  const reads = hub.requests().filter((r) => r.origin === 'cdn' && r.method === 'GET' && r.path.endsWith('/model.safetensors'));
  expect(reads.some((r) => from(r) >= layer1)).toBe(true);
  for (const r of reads) expect(from(r) < dataStart || from(r) >= layer1, r.range ?? 'no Range').toBe(true);
  expect((await manifests(second)).map((m) => [m.id, m.state])).toEqual([[`${url.slice(0, -1)}#df11`, 'complete']]);
  await expectGreedyAnswer(second);
});

test('a gated repo: access-denied without a token; with one it loads, and the CDN never sees the token', async ({ page }) => {
  test.setTimeout(SLOW);
  const url = repoUrl('org/gated-micro');
  await page.goto(`/?mode=bf16&model=${encodeURIComponent(url)}`);
  await expect(page.locator('#error')).toContainText('refused access', { timeout: SLOW });
  await page.getByLabel('Access token (gated repos, optional)').fill(TOKEN);
  await page.getByLabel('Model URL').fill(url);
  await page.getByRole('button', { name: 'Load' }).click();
  await waitReady(page);
  const requests = hub.requests();
  expect(requests.some((r) => r.origin === 'hub' && r.status === 401)).toBe(true);
  expect(requests.filter((r) => r.origin === 'cdn').length).toBeGreaterThan(0);
  for (const r of requests.filter((x) => x.origin === 'cdn')) expect(r.authorization, r.path).toBeNull();

  // A second model that fails to load leaves this one answering.
  await page.getByLabel('Model URL').fill(repoUrl('org/no-such-repo'));
  await page.getByRole('button', { name: 'Load' }).click();
  await expect(page.locator('#load-status')).toContainText('still using', { timeout: SLOW });
  await expectGreedyAnswer(page);
});

test('a published DF11 layout (v0.2.0, layers only, index beside, single file) loads and answers; a v0.1 pickle repo says why not, and failing to load keeps the model that was loaded', async ({ page }) => {
  test.setTimeout(SLOW);
  await page.goto(`/?mode=bf16&model=${encodeURIComponent(repoUrl('DFloat11/pickles-v0.1'))}`);
  await expect(page.locator('#error')).toContainText('v0.1', { timeout: SLOW });
  await page.getByLabel('Model URL').fill(repoUrl('DFloat11/stories-micro-DF11'));
  await page.getByRole('button', { name: 'Load' }).click();
  await waitReady(page);
  await expectGreedyAnswer(page);
  // Served as DF11: nothing was compressed, the store holds the published files.
  const stored = await manifests(page);
  expect(stored.map((m) => m.id)).toEqual([repoUrl('DFloat11/stories-micro-DF11').slice(0, -1)]);
  expect(Object.keys(stored[0]!.files)).toContain('model.safetensors');

  // A second model that fails to load leaves the first one loaded and answering.
  await page.getByLabel('Model URL').fill(repoUrl('DFloat11/pickles-v0.1'));
  await page.getByRole('button', { name: 'Load' }).click();
  await expect(page.locator('#error')).toContainText('v0.1', { timeout: SLOW });
  await expectGreedyAnswer(page);
});
