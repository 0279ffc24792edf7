import { createHash } from 'node:crypto';
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compressModel } from '../../format/compress-model.ts';
import { parameterShapes } from '../../format/config.ts';
import { openModel } from '../../format/model-reader.ts';
import { directoryFiles, directorySink } from '../../format/node-files.ts';
import type { Command } from '../command.ts';

/** The bundled BF16 models (under models/) and the DF11 directories made from them (under public/models/). */
const BUILDS = [
  { source: 'stories-15m', name: 'stories-15m-df11' },
  { source: 'stories-micro', name: 'stories-micro-df11' },
] as const;

const usage = `usage: df11 build-models [--force] [--root <repo-dir>]

Compresses models/stories-15m and models/stories-micro into public/models/<name>-df11/ (skipped when the
output is newer than every input file, unless --force), copies their tokenizer files, and writes
public/models/index.json: { models: [{ name, path, format, source, parameters, files: [{ name, size, sha256 }] }] }
where path is relative to the site root (e.g. "models/stories-15m-df11").`;

export interface ModelIndexEntry {
  name: string;
  /** Directory relative to the site root, no trailing slash. */
  path: string;
  format: 'df11';
  /** The bundled BF16 model it was made from (models/<source>). */
  source: string;
  /** Number of weights in the model (a tied head counted once). */
  parameters: number;
  files: Array<{ name: string; size: number; sha256: string }>;
}

export const command: Command = {
  name: 'build-models',
  summary: 'generate public/models/*-df11 and index.json from the bundled models',
  usage,
  async run(args) {
    const { values } = parseArgs({ args, options: { force: { type: 'boolean' }, root: { type: 'string' } } });
    const root = values.root ?? fileURLToPath(new URL('../../../', import.meta.url));
    const publicModels = join(root, 'public', 'models');
    const entries: ModelIndexEntry[] = [];
    for (const build of BUILDS) {
      const input = join(root, 'models', build.source);
      const output = join(publicModels, build.name);
      if (values.force !== true && (await newestMtime(input)) < (await oldestMtime(output))) {
        process.stderr.write(`${build.name}: up to date\n`);
      } else {
        // Build beside the target and swap in, so an interrupted build never looks up to date.
        const partial = `${output}.partial`;
        await rm(partial, { recursive: true, force: true });
        const summary = await compressModel(directoryFiles(input), directorySink(partial));
        await rm(output, { recursive: true, force: true });
        await rename(partial, output);
        const pct = ((100 * summary.storedBytes) / summary.originalBytes).toFixed(2);
        process.stderr.write(`${build.name}: ${summary.units.length} units, ${pct}% of BF16, ${summary.seconds.toFixed(2)} s\n`);
      }
      entries.push(await indexEntry(output, build.name, build.source));
    }
    await writeFile(join(publicModels, 'index.json'), `${JSON.stringify({ models: entries }, null, 2)}\n`);
    return 0;
  },
};

async function indexEntry(dir: string, name: string, source: string): Promise<ModelIndexEntry> {
  const files: ModelIndexEntry['files'] = [];
  for (const file of (await readdir(dir)).sort()) {
    const data = await readFile(join(dir, file));
    files.push({ name: file, size: data.byteLength, sha256: createHash('sha256').update(data).digest('hex') });
  }
  const { spec } = await openModel(directoryFiles(dir));
  let parameters = 0;
  for (const shape of parameterShapes(spec).values()) parameters += shape.reduce((a, b) => a * b, 1);
  return { name, path: `models/${name}`, format: 'df11', source, parameters, files };
}

/** Latest modification time of the files in `dir` (0 if none). */
async function newestMtime(dir: string): Promise<number> {
  const times = await Promise.all((await readdir(dir)).map(async (f) => (await stat(join(dir, f))).mtimeMs));
  return Math.max(0, ...times);
}

/** Earliest modification time of the files in `dir` (0 if it is missing or empty, i.e. stale). */
async function oldestMtime(dir: string): Promise<number> {
  const names = await readdir(dir).catch(() => [] as string[]);
  if (names.length === 0) return 0;
  const times = await Promise.all(names.map(async (f) => (await stat(join(dir, f))).mtimeMs));
  return Math.min(...times);
}
