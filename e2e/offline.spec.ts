import { expect, test } from '@playwright/test';
import { TextTokenizer } from '../src/engine/tokenizer.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import { answerText, chatRef, QUESTION, send, setSettings, SLOW, waitReady } from './chat-helpers.ts';

test.describe.configure({ timeout: 2 * SLOW });

test('after one online visit the app loads and chats offline', async ({ page, context }) => {
  const tokenizer = await TextTokenizer.fromFiles(directoryFiles('models/stories-15m'));
  await page.goto('/?mode=bf16'); // weights decoded once at load: SwiftShader is slow (see chat.spec.ts)
  await waitReady(page); // the model is now in IndexedDB
  // the service worker has precached the app shell and controls the page
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) {
      await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
    }
  });
  const manifest = await page.evaluate(async () => (await fetch('manifest.webmanifest')).json());
  expect(manifest.icons.length).toBeGreaterThan(0);

  await context.setOffline(true);
  await page.reload();
  await expect(page.getByRole('heading', { name: 'df11-web' })).toBeVisible();
  // really offline: the network answers nothing that the service worker has not cached
  expect(await page.evaluate(() => navigator.onLine)).toBe(false);
  const uncached = await page.evaluate(() => fetch('models/stories-15m-df11/config.json').then(() => 'fetched', () => 'failed'));
  expect(uncached).toBe('failed');
  await waitReady(page);
  await setSettings(page, { temperature: 0, maxTokens: 8 });
  const answer = await send(page, QUESTION);
  await expect(answer).toHaveAttribute('data-state', 'done', { timeout: SLOW });
  expect(await answerText(answer)).toBe(tokenizer.decode(chatRef.greedy_ids.slice(0, 8)));
  await expect(page.locator('#error')).toBeHidden();
});
