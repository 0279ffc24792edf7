// Device loss in Chromium (SwiftShader): the GPU device is destroyed while an answer streams, in the demo
// (in-thread engine) and in the worker engine (test-pages/engine-loss.html). The answer fails with
// device-lost, the engine loads the model again from IndexedDB (no model request reaches the network) on a
// new device, and the next answer is the greedy reference again.
import { expect, test } from '@playwright/test';
import type {} from '../test-pages/engine-loss.ts'; // window.df11Loss
import { answerText, chatRef, QUESTION, send, setSettings, SLOW, waitReady } from './chat-helpers.ts';

const MODEL = '/models/stories-15m-df11/';

declare global {
  interface Window {
    /** Destroy the device whose queue gets the `n`th submit from now. */
    df11LoseDeviceAfterSubmits(n: number): void;
    df11DeviceCount(): number;
  }
}

test.use({ serviceWorkers: 'block' });
test.describe.configure({ timeout: 2 * SLOW });

test('a lost device mid-answer: device-lost, recovered from storage, the next answer is right (in the page)', async ({ page, context }) => {
  await page.addInitScript(() => {
    const devices: GPUDevice[] = [];
    const requestDevice = GPUAdapter.prototype.requestDevice;
    GPUAdapter.prototype.requestDevice = async function (this: GPUAdapter, ...args: Parameters<GPUAdapter['requestDevice']>) {
      const device = await requestDevice.apply(this, args);
      devices.push(device);
      return device;
    };
    let submitsLeft = 0;
    const submit = GPUQueue.prototype.submit;
    GPUQueue.prototype.submit = function (this: GPUQueue, ...args: Parameters<GPUQueue['submit']>) {
      submit.apply(this, args);
      if (submitsLeft > 0 && --submitsLeft === 0) devices.find((d) => d.queue === this)?.destroy(); // its work is in flight
    };
    window.df11LoseDeviceAfterSubmits = (n) => (submitsLeft = n);
    window.df11DeviceCount = () => devices.length;
  });
  await page.goto('/?worker=0&mode=bf16');
  await waitReady(page);
  const modelRequests: string[] = [];
  context.on('request', (r) => r.url().includes(MODEL) && modelRequests.push(r.url()));

  await setSettings(page, { temperature: 0, maxTokens: chatRef.greedy_ids.length });
  // once the answer shows its first text, the next GPU submit (the next decode step) loses the device
  await page.evaluate(() => {
    const observer = new MutationObserver(() => {
      if (!document.querySelector('[data-role=assistant] .body')?.textContent) return;
      observer.disconnect();
      window.df11LoseDeviceAfterSubmits(1);
    });
    observer.observe(document.getElementById('transcript')!, { subtree: true, childList: true, characterData: true });
  });
  await page.getByRole('textbox', { name: 'Message' }).fill(QUESTION);
  await page.getByRole('button', { name: 'Send' }).click();
  const lost = page.locator('[data-role=assistant]').first();
  await expect(lost).toHaveAttribute('data-state', 'error', { timeout: SLOW });
  const partial = await answerText(lost);
  expect(partial.length).toBeGreaterThan(0);
  expect(chatRef.greedy_text.startsWith(partial)).toBe(true);
  expect(partial.length).toBeLessThan(chatRef.greedy_text.length);
  await expect(page.locator('#error')).toContainText('The GPU stopped responding');
  await expect(page.locator('#load-status')).toContainText('Recovered from a GPU reset', { timeout: SLOW });
  expect(await page.evaluate(() => window.df11DeviceCount())).toBe(2);

  await page.getByRole('button', { name: 'New chat' }).click();
  await setSettings(page, { temperature: 0, maxTokens: 6 });
  const next = await send(page, QUESTION);
  await expect(next).toHaveAttribute('data-state', 'done', { timeout: SLOW });
  const text = await answerText(next);
  expect(text.length).toBeGreaterThan(0);
  expect(chatRef.greedy_text.startsWith(text)).toBe(true);
  expect(modelRequests).toEqual([]);
});

test('the worker engine: device-lost across the worker, then recovered, from storage, with the prompt restored', async ({ page, context }) => {
  const modelRequests: string[] = [];
  context.on('request', (r) => r.url().includes(MODEL) && modelRequests.push(r.url()));
  await page.goto('/test-pages/engine-loss.html');
  await expect(page.locator('#state')).toHaveAttribute('data-state', 'ready');
  await page.evaluate((source) => window.df11Loss.load(source), MODEL);
  const downloaded = modelRequests.length;
  expect(downloaded).toBeGreaterThan(0); // the worker's requests are seen here

  const messages = [{ role: 'user' as const, content: QUESTION }];
  expect(await page.evaluate(() => window.df11Loss.arm())).toBe(1);
  const lost = await page.evaluate(([m, n]) => window.df11Loss.chat(m, n), [messages, chatRef.greedy_ids.length] as const);
  expect(lost.error?.code).toBe('device-lost');
  expect(lost.text.length).toBeGreaterThan(0);
  expect(chatRef.greedy_text.startsWith(lost.text)).toBe(true);
  // the device went at the decode step after the first token: the cache held the prompt
  const recovered = await page.evaluate(() => window.df11Loss.event('recovered'));
  expect(recovered).toEqual({ type: 'recovered', model: new URL(MODEL, page.url()).href, attempts: 1, restoredTokens: chatRef.input_ids.length });
  expect((await page.evaluate(() => window.df11Loss.events())).map((e) => e.type)).toEqual(['device-lost', 'recovered']);
  expect(await page.evaluate(() => window.df11Loss.devices())).toBe(2);

  const next = await page.evaluate((m) => window.df11Loss.chat(m, 6), messages);
  expect(next.error).toBeNull();
  expect(next.text.length).toBeGreaterThan(0);
  expect(chatRef.greedy_text.startsWith(next.text)).toBe(true);
  expect(modelRequests).toHaveLength(downloaded);
});
