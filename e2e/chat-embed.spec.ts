import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { TextTokenizer } from '../src/engine/tokenizer.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import { chatRef, QUESTION, SLOW } from './chat-helpers.ts';

test.describe.configure({ timeout: SLOW });

/** Another site embedding the library build: the README's three lines, nothing from the demo. */
const EMBED_PAGE = `<!doctype html><meta charset="utf-8"><title>embed</title><body><script type="module">
import { createWorkerEngine } from '/embed/df11-web.js';
const engine = createWorkerEngine(new Worker('/embed/df11-worker.js', { type: 'module' }));
try {
  await engine.load('/models/stories-15m-df11/', { mode: 'bf16' });
  const reply = await engine.chat.completions.create({ messages: [{ role: 'user', content: ${JSON.stringify(QUESTION)} }], temperature: 0, max_tokens: 8 });
  document.body.dataset.answer = reply.choices[0].message.content;
} catch (e) {
  document.body.dataset.error = e.code + ': ' + e.message;
}
</script>`;

test('the library build runs the engine in a worker on another page', async ({ page }) => {
  execFileSync('npx', ['vite', 'build', '--config', 'vite.lib.config.ts', '--logLevel', 'error'], { stdio: 'inherit' });
  // serve the page and dist-lib/ under /embed/ on the app's origin (the models come from the app server)
  await page.context().route('**/embed/**', (route) => {
    const name = new URL(route.request().url()).pathname.replace(/^\/embed\//, '');
    if (name === 'index.html') return route.fulfill({ body: EMBED_PAGE, contentType: 'text/html' });
    return route.fulfill({ body: readFileSync(join('dist-lib', name)), contentType: 'text/javascript' });
  });
  await page.goto('/embed/index.html');
  const body = page.locator('body');
  await expect(page.locator('body[data-answer], body[data-error]')).toHaveCount(1, { timeout: SLOW });
  expect(await body.getAttribute('data-error')).toBeNull();
  const tokenizer = await TextTokenizer.fromFiles(directoryFiles('models/stories-15m'));
  expect(await body.getAttribute('data-answer')).toBe(tokenizer.decode(chatRef.greedy_ids.slice(0, 8)));
});
