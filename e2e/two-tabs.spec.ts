// Two tabs of the demo in one browser load the same model at once: the store's Web Lock makes the second
// wait for the first's download and reuse it, so every model file crosses the network once (counted at the
// route), and both tabs answer. Then the storage list's Verify finds a chunk damaged on disk and fetches it again.
import { expect, test } from '@playwright/test';
import { answerText, chatRef, QUESTION, send, setSettings, SLOW, waitReady } from './chat-helpers.ts';

test.use({ serviceWorkers: 'block' });
test.describe.configure({ timeout: 2 * SLOW });

const MODEL = '/models/stories-15m-df11/';

test('two tabs load one model with one set of fetches; both answer; Verify repairs a damaged chunk', async ({ context }) => {
  const fetched = new Map<string, number>();
  let releaseFirst!: () => void;
  const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
  let held = false;
  let heldNow!: () => void;
  const firstRequested = new Promise<void>((resolve) => (heldNow = resolve));
  await context.route(`**${MODEL}**`, async (route) => {
    const name = new URL(route.request().url()).pathname.slice(MODEL.length);
    fetched.set(name, (fetched.get(name) ?? 0) + 1);
    // the first weight file waits until the second tab is queued behind the first tab's download lock
    if (!held && name.endsWith('.safetensors')) {
      held = true;
      heldNow();
      await firstHeld;
    }
    await route.continue();
  });

  const first = await context.newPage();
  await first.goto('/?worker=0&mode=bf16');
  await firstRequested; // the first tab holds the model's lock, its download under way
  const second = await context.newPage();
  await second.goto('/?worker=0&mode=bf16');
  const waiting = () => second.evaluate(async () => (await navigator.locks.query()).pending?.map((l) => l.name) ?? []);
  // queued on the model's lock: the engine's fetch-or-compress lock (src/engine/model-source.ts), which wraps the store's own
  await expect.poll(waiting, { timeout: SLOW }).toContainEqual(expect.stringMatching(/^df11-(compress|model):/));
  releaseFirst();
  await Promise.all([waitReady(first), waitReady(second)]);

  console.log(`model requests: ${JSON.stringify(Object.fromEntries(fetched))}`);
  const weights = [...fetched].filter(([name]) => name.endsWith('.safetensors'));
  expect(weights.length).toBeGreaterThan(1);
  // config.json is also read by each tab's fit check (src/engine/fit.ts) and by the first tab's DF11-or-BF16 probe
  // of the repo (src/store/compress-once.ts), outside the store: 1 + 2 + 1
  for (const [name, count] of fetched) expect(count, name).toBe(name === 'config.json' ? 1 + 2 + 1 : 1);

  for (const page of [first, second]) {
    await setSettings(page, { temperature: 0, maxTokens: 4 });
    const answer = await send(page, QUESTION);
    await expect(answer).toHaveAttribute('data-state', 'done', { timeout: SLOW });
    const text = await answerText(answer);
    expect(text.length).toBeGreaterThan(0);
    expect(chatRef.greedy_text.startsWith(text)).toBe(true);
  }

  // Verify in the storage list: a clean store, then one chunk damaged on disk → fetched again (one request)
  const row = first.locator('#stored-models li', { hasText: 'stories-15m-df11' });
  await row.getByRole('button', { name: /^Verify/ }).click();
  await expect(row.getByRole('status')).toHaveText('Verified: every chunk intact.', { timeout: SLOW });
  const damaged = await first.evaluate(damageOneChunk);
  await row.getByRole('button', { name: /^Verify/ }).click();
  await expect(row.getByRole('status')).toHaveText('Verified: 1 damaged chunk fetched again.', { timeout: SLOW });
  expect(fetched.get(damaged)).toBe(2);
});

/** Flip a byte of the first stored chunk of the largest file, in the store's IndexedDB records (src/store/records.ts); the file's name. */
async function damageOneChunk(): Promise<string> {
  const request = <T>(r: IDBRequest<T>) => new Promise<T>((resolve, reject) => ((r.onsuccess = () => resolve(r.result)), (r.onerror = () => reject(r.error))));
  const open = (name: string) => {
    const r = indexedDB.open(name);
    return request(r);
  };
  const manifests = await open('df11-manifests-v1');
  const all = await request(manifests.transaction('manifests').objectStore('manifests').getAll()) as { id: string; files: { name: string; size: number }[] }[];
  const manifest = all.find((m) => m.id.endsWith('stories-15m-df11'))!;
  const file = manifest.files.reduce((a, b) => (b.size > a.size ? b : a));
  const chunks = (await open('df11-chunks-v1')).transaction('chunks', 'readwrite').objectStore('chunks');
  const key = [manifest.id, file.name, 0];
  const record = await request(chunks.get(key)) as { data: ArrayBuffer };
  const data = new Uint8Array(record.data.slice(0));
  data[data.length >> 1] ^= 0x5a;
  await request(chunks.put({ ...record, data: data.buffer }, key));
  return file.name;
}
