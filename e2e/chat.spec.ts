import { expect, test } from '@playwright/test';
import { TextTokenizer } from '../src/engine/tokenizer.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import { answerText, chatRef, QUESTION, send, setSettings, SLOW, waitReady } from './chat-helpers.ts';

test.describe.configure({ timeout: 2 * SLOW });

/*
 * SwiftShader runs WebGPU on the CPU, where decoding every DF11 layer for every token costs ~25 s per
 * forward pass: the 48-token checks load the DF11 files with weights decoded once at load (?mode=bf16,
 * also what "Auto" picks on CPU adapters), and a short check runs DF11-resident weights (?mode=df11).
 */
for (const mode of ['thread', 'worker'] as const) {
  test(`greedy answer at temperature 0 equals the reference (${mode})`, async ({ page }) => {
    await page.setViewportSize({ width: 1280, height: 1040 });
    await page.goto(mode === 'thread' ? '/?worker=0&mode=bf16' : '/?mode=bf16');
    await expect(page.getByRole('progressbar')).toBeVisible();
    await expect(page.locator('#load-status')).toContainText(/Downloading|Uploading/, { timeout: SLOW });
    if (mode === 'worker') await page.screenshot({ path: 'e2e/artifacts/loading.png' });
    const loadStart = Date.now();
    await waitReady(page);
    const loadSeconds = (Date.now() - loadStart) / 1000;
    await expect(page.getByRole('progressbar')).toHaveAttribute('aria-valuenow', '100');

    await setSettings(page, { temperature: 0, maxTokens: chatRef.greedy_ids.length });
    const chatStart = Date.now();
    const answer = await send(page, QUESTION);
    await expect(answer).toHaveAttribute('data-state', 'done', { timeout: SLOW });
    const chatSeconds = (Date.now() - chatStart) / 1000;
    expect(await answerText(answer)).toBe(chatRef.greedy_text);
    await expect(page.getByRole('log')).toContainText(chatRef.greedy_text);

    const stats = await page.locator('#stats').innerText();
    expect(stats).toMatch(/Decode/);
    console.log(`[${mode}] load ${loadSeconds.toFixed(1)} s, 48-token answer ${chatSeconds.toFixed(1)} s\n${stats}`);
    await page.screenshot({ path: `e2e/artifacts/chat-${mode}.png` });
    // the README's screenshot is committed: rewrite it only when asked
    if (mode === 'worker' && process.env.UPDATE_SCREENSHOT) await page.screenshot({ path: 'docs/screenshot.png' });
  });
}

test('DF11-resident weights: the first greedy tokens equal the reference (worker)', async ({ page }) => {
  const tokenizer = await TextTokenizer.fromFiles(directoryFiles('models/stories-15m'));
  await page.goto('/?mode=df11&resident=0'); // every layer decoded per step (auto would keep this small model resident)
  await waitReady(page);
  await expect(page.locator('#stats')).toContainText('DF11 vs');
  await expect(page.locator('#stats')).toContainText('0 of 8 layers');
  await setSettings(page, { temperature: 0, maxTokens: 2 });
  const started = Date.now();
  const answer = await send(page, QUESTION);
  await expect(answer).toHaveAttribute('data-state', 'done', { timeout: SLOW });
  console.log(`[df11] 2-token answer ${((Date.now() - started) / 1000).toFixed(1)} s\n${await page.locator('#stats').innerText()}`);
  expect(await answerText(answer)).toBe(tokenizer.decode(chatRef.greedy_ids.slice(0, 2)));
});

test('Stop ends the stream within one token and the next request works', async ({ page }) => {
  const tokenizer = await TextTokenizer.fromFiles(directoryFiles('models/stories-15m'));
  await page.goto('/?worker=0&mode=bf16');
  await waitReady(page);
  await setSettings(page, { temperature: 0, maxTokens: chatRef.greedy_ids.length });
  const answer = await send(page, QUESTION);
  await expect(answer.locator('.body')).toHaveText(/\S+ \S+ \S+/, { timeout: SLOW }); // a few tokens in
  // read the text and press Stop in the same task, so no token slips in between
  const atStop = await answer.evaluate((el) => {
    const text = el.querySelector('.body')?.textContent ?? '';
    document.querySelector<HTMLButtonElement>('#stop')?.click();
    return text;
  });
  await expect(answer).toHaveAttribute('data-state', 'stopped', { timeout: 60_000 });
  const final = await answerText(answer);
  expect(chatRef.greedy_text.startsWith(final)).toBe(true);
  const extra = tokenizer.encode(final).length - tokenizer.encode(atStop).length;
  expect(extra).toBeLessThanOrEqual(1);
  await expect(page.getByRole('button', { name: 'Stop' })).toBeDisabled();

  // the next request still works (a fresh conversation: the reference prompt again)
  await page.getByRole('button', { name: 'New chat' }).click();
  await setSettings(page, { temperature: 0, maxTokens: 6 });
  const next = await send(page, QUESTION);
  await expect(next).toHaveAttribute('data-state', 'done', { timeout: SLOW });
  expect(await answerText(next)).toBe(tokenizer.decode(chatRef.greedy_ids.slice(0, 6)));
});
