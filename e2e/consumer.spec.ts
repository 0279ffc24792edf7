// Another project using df11-web from npm: pack the library, install the tarball into a scratch Vite app
// (e2e/consumer-app), type-check the app against the shipped .d.ts, build it, import the package in Node,
// and chat with the bundled model through createWorkerEngine in Chromium.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { expect, test } from '@playwright/test';
import { TextTokenizer } from '../src/engine/tokenizer.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import { chatRef, SLOW } from './chat-helpers.ts';

test.describe.configure({ timeout: SLOW });

const ROOT = resolve(import.meta.dirname, '..');
/** Inside the repository, so the app's tools (vite, tsc) come from its node_modules; ignored by git. */
const WORK = join(ROOT, 'test-results', 'consumer');
const APP = join(WORK, 'app');
const BIN = (tool: string) => join(ROOT, 'node_modules', '.bin', tool);
const CONTENT_TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };

function run(command: string, args: string[], cwd: string): string {
  return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

/**
 * `npm install <tarball>`, offline: the tarball's own dependencies are given as the folders `npm ci`
 * installed for this repository (linked, same versions), so npm has nothing to fetch and CI needs no
 * registry. Optional peers (webgpu) are not installed, as for any browser app.
 */
function installTarball(tarball: string): void {
  const { dependencies } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const local = Object.keys(dependencies).map((name) => join(ROOT, 'node_modules', name));
  run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock', tarball, ...local], APP);
}

test('an app installs the packed library, type-checks against its .d.ts, and chats through createWorkerEngine', async ({ page }) => {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  // npm pack runs prepack (npm run build:lib): dist-lib + .d.ts
  const tarball = join(WORK, run('npm', ['pack', '--silent', '--pack-destination', WORK], ROOT).trim().split('\n').at(-1) ?? '');
  // only the library: built JS, declarations, package.json, README (and the CLI launcher npm always packs)
  expect(statSync(tarball).size).toBeLessThan(1_000_000);
  const entries = run('tar', ['-tzf', tarball], WORK).trim().split('\n');
  expect(entries.filter((e) => !/^package\/(dist-lib\/|package\.json$|README\.md$|bin\/df11\.mjs$)/.test(e))).toEqual([]);
  expect(entries).toContain('package/dist-lib/types/index.d.ts');
  cpSync(join(ROOT, 'e2e', 'consumer-app'), APP, { recursive: true });
  installTarball(tarball);

  const pkg = JSON.parse(readFileSync(join(APP, 'node_modules', 'df11-web', 'package.json'), 'utf8')) as { version: string };
  expect(pkg.version).toBeTruthy();
  run(BIN('tsc'), ['-p', 'tsconfig.json'], APP); // throws with tsc's diagnostics on a type error
  run(BIN('vite'), ['build', '--base', '/consumer/', '--logLevel', 'error'], APP);

  // the same package in Node: the browser entry imports without a DOM, the Node entry without Dawn loaded
  const node = run('node', ['--input-type=module', '-e', [
    "const web = await import('df11-web');",
    "const nodeEntry = await import('df11-web/node');",
    'console.log(JSON.stringify([typeof web.createWorkerEngine, typeof web.createEngine, typeof nodeEntry.createNodeEngine]));',
  ].join('\n')], APP);
  expect(JSON.parse(node)).toEqual(['function', 'function', 'function']);

  // serve the built app under /consumer/ on the preview server's origin (the model comes from there)
  await page.context().route('**/consumer/**', (route) => {
    const path = new URL(route.request().url()).pathname.replace(/^\/consumer\/?/, '') || 'index.html';
    return route.fulfill({ body: readFileSync(join(APP, 'dist', path)), contentType: CONTENT_TYPES[extname(path)] ?? 'application/octet-stream' });
  });
  await page.goto('/consumer/');
  const body = page.locator('body');
  await expect(page.locator('body[data-refused], body[data-error]')).toHaveCount(1, { timeout: SLOW });
  expect(await body.getAttribute('data-error')).toBeNull();
  const tokenizer = await TextTokenizer.fromFiles(directoryFiles('models/stories-15m'));
  expect(await body.getAttribute('data-answer')).toBe(tokenizer.decode(chatRef.greedy_ids.slice(0, 8)));
  expect(JSON.parse((await body.getAttribute('data-usage')) ?? '')).toEqual({
    prompt_tokens: chatRef.input_ids.length, completion_tokens: 8, total_tokens: chatRef.input_ids.length + 8,
  });
  expect(await body.getAttribute('data-logprobs')).toBe('8');
  expect(await body.getAttribute('data-progress')).toBe('true');
  expect(await body.getAttribute('data-refused')).toMatch(/^n:/);
});
