#!/usr/bin/env node
// Runs the bench page (bench.html) and the chat demo headless in a Chromium we name, on its WebGPU adapter:
// checks the adapter first (refuses SwiftShader unless --allow-swiftshader), collects the page's BENCH lines
// into a JSON-lines file, then loads the bundled model in the demo with DF11-resident weights, asks one
// question on a warm IndexedDB and records the first-token time, with a screenshot. See bench/CHROMIUM.md.
//
//   npx vite build && npx vite build --config bench/vite.config.ts     # dist/ with bench.html
//   node bench/chromium-run.mjs --chromium /usr/bin/chromium --flags swiftshader --allow-swiftshader \
//     --query 'bench=decode,forward&rows=256&cols=256&copy-mib=4&wg=256&small'          # smoke test here
//
// Plain Node ESM with playwright-core only (no test runner, no browser download): the GPU machine has
// neither npm nor network. Every wait has a timeout; every failure exits non-zero with a one-line reason.
import { createReadStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Flag presets: e2e/chromium-flags.json (its "swiftshader" list is also what the Playwright tests use). */
const PRESETS = JSON.parse(readFileSync(join(root, 'e2e/chromium-flags.json'), 'utf8'));

const USAGE = `usage: node bench/chromium-run.mjs [options]
  --chromium PATH        Chromium / chrome-headless-shell binary (env CHROMIUM_PATH; default /usr/bin/chromium)
  --flags NAME|LIST      flag preset (${Object.keys(PRESETS).join(', ')}; default gpu) or a space-separated flag list
  --flag F               one more flag (repeatable)
  --allow-swiftshader    measure even when the adapter is SwiftShader (smoke tests)
  --dist DIR             the built app with bench.html (default dist)
  --query Q              bench page query: bench=decode,forward plus the benchmarks' flags as parameters
  --out FILE             BENCH lines as JSON lines (default bench/runs/chromium.jsonl)
  --chat-query Q         demo query (default mode=df11&resident=0: DF11-resident weights, every layer decoded per step)
  --question TEXT        what to ask the demo (default: Tell me a story about Max.)
  --max-tokens N         answer length (default 48; temperature 0)
  --screenshot FILE      the demo after its answer (default bench/runs/chromium-chat.png)
  --gpu-info FILE        also save chrome://gpu as text (for reports of what Chrome found)
  --skip-bench, --skip-chat
  --bench-timeout-s S    the whole bench page (default 420)
  --chat-timeout-s S     each demo wait: a load, an answer (default 120)`;

const { values: opt } = parseArgs({
  options: {
    chromium: { type: 'string', default: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' },
    flags: { type: 'string', default: 'gpu' },
    flag: { type: 'string', multiple: true, default: [] },
    'allow-swiftshader': { type: 'boolean', default: false },
    dist: { type: 'string', default: 'dist' },
    query: { type: 'string', default: 'bench=decode,forward&models=stories-15m,llama-1b&modes=bf16,df11&chunk=64,512&kv=f16&resident=0,100&copy-mib=256' },
    out: { type: 'string', default: 'bench/runs/chromium.jsonl' },
    'chat-query': { type: 'string', default: 'mode=df11&resident=0' },
    question: { type: 'string', default: 'Tell me a story about Max.' },
    'max-tokens': { type: 'string', default: '48' },
    screenshot: { type: 'string', default: 'bench/runs/chromium-chat.png' },
    'gpu-info': { type: 'string' },
    'skip-bench': { type: 'boolean', default: false },
    'skip-chat': { type: 'boolean', default: false },
    'bench-timeout-s': { type: 'string', default: '420' },
    'chat-timeout-s': { type: 'string', default: '120' },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  console.log(USAGE);
  process.exit(0);
}

/** Stops the run with a one-line reason (exit 1). */
class RunError extends Error {}
const fail = (message) => {
  throw new RunError(message);
};
const log = (line) => console.log(`[chromium-run] ${line}`);

/** Rejects after `ms` with "`what` timed out". */
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new RunError(`${what}: timed out after ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.wasm': 'application/wasm',
  '.safetensors': 'application/octet-stream',
};

/** An empty page of the served origin (WebGPU needs a secure context: 127.0.0.1 is one). */
const BLANK = '/__blank.html';

/** A static server for `dir` on 127.0.0.1 (a free port): GET/HEAD, whole files (the model store refetches on 200). */
async function serve(dir) {
  const base = resolve(dir);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (path === BLANK) return void res.writeHead(200, { 'content-type': MIME['.html'] }).end('<!doctype html><title>adapter check</title>');
    let file = normalize(join(base, path));
    if (!file.startsWith(base)) return void res.writeHead(403).end();
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream', 'content-length': statSync(file).size, 'cache-control': 'no-cache' });
    if (req.method === 'HEAD') return void res.end();
    createReadStream(file).pipe(res);
  });
  await new Promise((ok, ko) => server.once('error', ko).listen(0, '127.0.0.1', ok));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

/** The flag list: a preset name or a literal space-separated list, plus every --flag. */
function chromeFlags() {
  const base = PRESETS[opt.flags] ?? opt.flags.split(/\s+/).filter((f) => f !== '');
  return [...base, ...opt.flag];
}

/** A page that fails the run when it crashes, and logs its errors. */
function watch(page, name) {
  let crashed;
  const crash = new Promise((_, reject) => {
    crashed = reject;
  });
  crash.catch(() => undefined);
  page.on('crash', () => crashed(new RunError(`${name}: the page crashed (GPU process or renderer died)`)));
  page.on('pageerror', (e) => log(`${name} page error: ${e.message}`));
  return crash;
}

/** navigator.gpu.requestAdapter() in a page of our origin: its info, limits and features (throws if none). */
async function checkAdapter(context, origin) {
  const page = await context.newPage();
  try {
    await withTimeout(page.goto(`${origin}${BLANK}`), 60_000, 'opening a blank page');
    const info = await withTimeout(page.evaluate(async () => {
      if (!navigator.gpu) return { error: 'navigator.gpu is missing (WebGPU disabled: check --enable-unsafe-webgpu)' };
      const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (!adapter) return { error: 'navigator.gpu.requestAdapter() returned null (no usable Vulkan driver?)' };
      const { vendor, architecture, device, description } = adapter.info;
      return {
        vendor, architecture, device, description,
        isFallbackAdapter: adapter.info.isFallbackAdapter ?? null,
        features: [...adapter.features].sort(),
        limits: { maxBufferSize: adapter.limits.maxBufferSize, maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup },
        userAgent: navigator.userAgent,
      };
    }), 60_000, 'navigator.gpu.requestAdapter()');
    return info;
  } finally {
    await page.close();
  }
}

async function saveGpuInfo(context, file) {
  const page = await context.newPage();
  try {
    await withTimeout(page.goto('chrome://gpu'), 30_000, 'chrome://gpu');
    await page.waitForTimeout(2000); // chrome://gpu fills itself in after load
    // the page is a shadow-DOM element: its text is the shadow root's non-style children's
    const text = await page.evaluate(() => {
      const root = document.querySelector('info-view')?.shadowRoot;
      return root ? [...root.children].filter((e) => e.tagName !== 'STYLE').map((e) => e.innerText).join('\n') : document.body.innerText;
    });
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    log(`chrome://gpu saved to ${file} (${text.length} chars)`);
  } catch (e) {
    log(`could not save chrome://gpu: ${e.message}`);
  } finally {
    await page.close();
  }
}

/** Opens bench.html?query, writes its BENCH lines to opt.out as they come; resolves on BENCH-DONE. */
async function runBenchPage(context, origin) {
  const page = await context.newPage();
  const crash = watch(page, 'bench.html');
  mkdirSync(dirname(opt.out), { recursive: true });
  writeFileSync(opt.out, '');
  const lines = [];
  let error;
  const done = new Promise((ok) => {
    page.on('console', (msg) => {
      const text = msg.text();
      const m = /^(BENCH|BENCH-ERROR|BENCH-DONE) (.*)$/s.exec(text);
      if (!m) return;
      console.log(text);
      if (m[1] === 'BENCH') {
        lines.push(m[2]);
        writeFileSync(opt.out, `${m[2]}\n`, { flag: 'a' });
      } else if (m[1] === 'BENCH-ERROR') error = JSON.parse(m[2]);
      else ok(JSON.parse(m[2]));
    });
  });
  try {
    await withTimeout(page.goto(`${origin}/bench.html?${opt.query}`), 60_000, 'opening bench.html');
    const result = await withTimeout(Promise.race([done, crash]), Number(opt['bench-timeout-s']) * 1000, 'bench page (BENCH-DONE)');
    if (!result.ok) fail(`bench page failed after ${lines.length} lines: ${error?.code ?? ''} ${error?.error ?? 'no message'}\n${error?.stack ?? ''}`);
    log(`${lines.length} BENCH lines in ${opt.out}`);
  } finally {
    await page.close();
  }
}

/** Waits until #load-status says Ready (or the page shows an error); returns seconds. */
async function waitReady(page, crash, what) {
  const t0 = Date.now();
  const ready = page.waitForFunction(() => {
    const status = document.querySelector('#load-status')?.textContent ?? '';
    const error = document.querySelector('#error:not([hidden])')?.textContent ?? '';
    return /Ready/.test(status) || /could not be loaded/.test(status) ? { status, error } : false;
  }, undefined, { timeout: 0, polling: 250 });
  const result = await (await withTimeout(Promise.race([ready, crash]), Number(opt['chat-timeout-s']) * 1000, what)).jsonValue();
  if (!/Ready/.test(result.status)) fail(`${what}: ${result.status} ${result.error}`);
  return (Date.now() - t0) / 1000;
}

/** The demo: a cold load (into IndexedDB), a reload (warm IndexedDB), one question; first-token time and a screenshot. */
async function runChat(context, origin) {
  const page = await context.newPage();
  const crash = watch(page, 'chat demo');
  try {
    await page.setViewportSize({ width: 1280, height: 1040 });
    const url = `${origin}/?${opt['chat-query']}`;
    await withTimeout(page.goto(url), 60_000, 'opening the demo');
    const coldLoadS = await waitReady(page, crash, 'demo: first load (download into IndexedDB)');
    log(`demo ready after ${coldLoadS.toFixed(1)} s (first load)`);
    await withTimeout(page.reload(), 60_000, 'reloading the demo');
    const warmLoadS = await waitReady(page, crash, 'demo: load from IndexedDB');
    log(`demo ready after ${warmLoadS.toFixed(1)} s (warm IndexedDB)`);
    await page.getByLabel('Temperature').fill('0');
    await page.getByLabel('Max tokens').fill(opt['max-tokens']);
    await page.locator('#message').fill(opt.question);
    // Timed in the page: from the Send click to the first text in the answer bubble, and to its end.
    const timing = page.evaluate(() => new Promise((resolveTiming) => {
      const before = document.querySelectorAll('[data-role=assistant]').length;
      const t0 = performance.now();
      let firstTokenMs;
      const observer = new MutationObserver(() => {
        const bubble = document.querySelectorAll('[data-role=assistant]')[before];
        if (!bubble) return;
        if (firstTokenMs === undefined && (bubble.querySelector('.body')?.textContent ?? '') !== '') firstTokenMs = performance.now() - t0;
        const state = bubble.getAttribute('data-state');
        if (state && state !== 'streaming') {
          observer.disconnect();
          resolveTiming({ firstTokenMs, answerMs: performance.now() - t0, state, text: bubble.querySelector('.body')?.textContent ?? '' });
        }
      });
      observer.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
      document.querySelector('#send').click();
    }));
    const answer = await withTimeout(Promise.race([timing, crash]), Number(opt['chat-timeout-s']) * 1000, 'demo: the answer');
    const stats = await page.locator('#stats').innerText().catch(() => '');
    mkdirSync(dirname(opt.screenshot), { recursive: true });
    await page.evaluate(() => window.scrollTo(0, 0)); // filling the settings scrolled the page
    await page.screenshot({ path: opt.screenshot, fullPage: true });
    const line = {
      bench: 'chat-demo', runtime: 'chromium', query: opt['chat-query'], question: opt.question, max_tokens: Number(opt['max-tokens']),
      cold_load_s: Number(coldLoadS.toFixed(2)), warm_load_s: Number(warmLoadS.toFixed(2)),
      first_token_ms: answer.firstTokenMs === undefined ? null : Number(answer.firstTokenMs.toFixed(1)),
      answer_ms: Number(answer.answerMs.toFixed(1)), state: answer.state, answer: answer.text,
      stats: stats.replace(/\n+/g, ' | '), screenshot: opt.screenshot,
    };
    console.log(`BENCH ${JSON.stringify(line)}`);
    mkdirSync(dirname(opt.out), { recursive: true });
    writeFileSync(opt.out, `${JSON.stringify(line)}\n`, { flag: 'a' });
    if (answer.state !== 'done') fail(`demo: the answer ended '${answer.state}' (${answer.text.slice(0, 80)})`);
  } finally {
    await page.close();
  }
}

async function main() {
  if (!existsSync(opt.chromium)) fail(`no Chromium at ${opt.chromium} (--chromium PATH or CHROMIUM_PATH)`);
  if (!existsSync(join(opt.dist, 'bench.html'))) fail(`${opt.dist}/bench.html missing: run \`npx vite build && npx vite build --config bench/vite.config.ts\` first`);
  const flags = chromeFlags();
  const ownHeadless = flags.some((f) => f.startsWith('--headless'));
  log(`chromium: ${opt.chromium}`);
  log(`flags: ${flags.join(' ')}`);
  log(`env: VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES ?? ''} VK_DRIVER_FILES=${process.env.VK_DRIVER_FILES ?? ''}`);
  const { server, origin } = await serve(opt.dist);
  // Each phase in a browser of its own: on the H200 the browser was gone after the bench page once
  // (the chat's page.goto: "Target page, context or browser has been closed").
  const inBrowser = async (fn) => {
    const browser = await withTimeout(chromium.launch({ executablePath: opt.chromium, args: flags, headless: !ownHeadless, timeout: 60_000 }), 90_000, 'launching Chromium');
    try {
      log(`browser ${browser.version()}, serving ${opt.dist} at ${origin}`);
      const context = await browser.newContext();
      await fn(context);
      await context.close();
    } finally {
      await browser.close().catch(() => undefined);
    }
  };
  try {
    await inBrowser(async (context) => {
      const adapter = await checkAdapter(context, origin).catch(async (e) => {
        if (opt['gpu-info']) await saveGpuInfo(context, opt['gpu-info']);
        throw e;
      });
      console.log(`ADAPTER ${JSON.stringify(adapter)}`);
      if (opt['gpu-info']) await saveGpuInfo(context, opt['gpu-info']);
      if (adapter.error) fail(`no WebGPU adapter: ${adapter.error}`);
      const name = `${adapter.vendor} ${adapter.architecture} ${adapter.device} ${adapter.description}`;
      if (/swiftshader/i.test(name) && !opt['allow-swiftshader']) {
        fail(`the adapter is SwiftShader (${name.trim()}), not the GPU: Chrome found no usable Vulkan driver. Check VK_ICD_FILENAMES, the flags (--flags), and --gpu-info FILE; --allow-swiftshader measures anyway`);
      }
      if (!opt['skip-bench']) await runBenchPage(context, origin);
    });
    if (!opt['skip-chat']) await inBrowser((context) => runChat(context, origin));
  } finally {
    server.close();
  }
}

main().then(
  () => log('done'),
  (e) => {
    console.error(`[chromium-run] FAILED: ${e instanceof RunError ? e.message : e?.stack ?? e}`);
    process.exit(1);
  },
);
