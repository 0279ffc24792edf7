/**
 * The bench page (bench.html): runs the decode and forward benchmarks (bench/decode-suite.ts,
 * bench/forward-suite.ts, the code behind the Node scripts) on the browser's WebGPU adapter. Options come
 * from the URL query under the Node flags' names, plus bench=decode,forward (which to run, in that order).
 * Every JSON line goes to the console as `BENCH <json>` and into #results; then `BENCH-DONE <json>` (and
 * `BENCH-ERROR <json>` before it when a benchmark threw). bench/chromium-run.mjs drives it headless.
 */
import { isDf11Error } from '../src/errors.ts';
import { memoryFiles } from '../src/format/memory-files.ts';
import { openModel } from '../src/format/model-reader.ts';
import { Gpu } from '../src/gpu/gpu.ts';
import { browserShaders } from '../src/gpu/shaders-browser.ts';
import { DECODE_OPTIONS, runDecodeBench } from './decode-suite.ts';
import { FORWARD_OPTIONS, runForwardBench, type FileModel } from './forward-suite.ts';
import { reportFrom, type BenchRuntime } from './gpu-timing.ts';
import { queryValues } from './options.ts';

/** The bundled DF11 copy of stories-15m (public/models, built by `df11 build-models`). */
const STORIES_15M = 'stories-15m-df11';

const results = document.getElementById('results') as HTMLPreElement;

function post(kind: 'BENCH' | 'BENCH-ERROR' | 'BENCH-DONE', json: string): void {
  const line = `${kind} ${json}`;
  console.log(line);
  results.textContent += `${line}\n`;
}

/** The bundled stories-15m, fetched into memory from the app's models/ (undefined when this build has none). */
async function bundledStories(): Promise<FileModel | undefined> {
  const response = await fetch('models/index.json');
  if (!response.ok) return undefined;
  const index = (await response.json()) as { models: { name: string; path: string; files: { name: string }[] }[] };
  const entry = index.models.find((m) => m.name === STORIES_15M);
  if (!entry) return undefined;
  return {
    source: entry.path,
    open: async () => {
      const files = new Map<string, Uint8Array>();
      for (const f of entry.files) {
        const r = await fetch(`${entry.path}/${f.name}`);
        if (!r.ok) throw new Error(`${entry.path}/${f.name}: HTTP ${r.status}`);
        files.set(f.name, new Uint8Array(await r.arrayBuffer()));
      }
      return openModel(memoryFiles(files, entry.path));
    },
  };
}

async function run(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const benches = (params.get('bench') ?? 'decode,forward').split(',').filter((b) => b !== '');
  const unknown = benches.filter((b) => b !== 'decode' && b !== 'forward');
  if (unknown.length > 0) throw new Error(`unknown bench '${unknown.join(',')}' (bench=decode,forward)`);
  const runtime: BenchRuntime = /Chrom(e|ium)\//.test(navigator.userAgent) ? 'chromium' : 'browser';
  const gpu = await Gpu.create({ shaders: browserShaders });
  try {
    reportFrom(gpu, runtime, (line) => post('BENCH', line));
    for (const bench of benches) {
      if (bench === 'decode') await runDecodeBench(gpu, queryValues(DECODE_OPTIONS, params));
      else await runForwardBench(gpu, queryValues(FORWARD_OPTIONS, params), await bundledStories());
    }
  } finally {
    gpu.destroy();
  }
}

run().then(
  () => {
    post('BENCH-DONE', JSON.stringify({ ok: true }));
    results.dataset.state = 'done';
  },
  (e: unknown) => {
    const error = e instanceof Error ? e.message : String(e);
    post('BENCH-ERROR', JSON.stringify({ error, code: isDf11Error(e) ? e.code : undefined, stack: e instanceof Error ? e.stack : undefined }));
    post('BENCH-DONE', JSON.stringify({ ok: false }));
    results.dataset.state = 'error';
  },
);
