import { expect, type Page } from '@playwright/test';
import { readTextRefs } from '../src/testing/model-reference.ts';

/** The ChatML reference of the bundled stories-15m ("Tell me a story about Max."). */
export const chatRef = readTextRefs('models/stories-15m')[2];
export const QUESTION = 'Tell me a story about Max.';

/** SwiftShader runs the GPU work on the CPU: loading and decoding take tens of seconds. */
export const SLOW = 540_000;

export async function waitReady(page: Page): Promise<void> {
  await expect(page.locator('#load-status')).toContainText('Ready', { timeout: SLOW });
}

export async function setSettings(page: Page, s: { temperature: number; maxTokens: number }): Promise<void> {
  await page.getByLabel('Temperature').fill(String(s.temperature));
  await page.getByLabel('Max tokens').fill(String(s.maxTokens));
}

/** Sends `text`; returns the locator of the answer bubble it starts. */
export async function send(page: Page, text: string) {
  const before = await page.locator('[data-role=assistant]').count();
  await page.getByRole('textbox', { name: 'Message' }).fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
  const answer = page.locator('[data-role=assistant]').nth(before);
  await expect(answer).toHaveAttribute('data-state', 'streaming');
  return answer;
}

export async function answerText(answer: ReturnType<Page['locator']>): Promise<string> {
  return (await answer.locator('.body').textContent()) ?? '';
}
