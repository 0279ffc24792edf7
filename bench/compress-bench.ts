/**
 * Encoder speed and compression ratio on the bundled models (`npm run bench:compress`):
 *
 *   npx tsx bench/compress-bench.ts [<hf-model-dir>...] [--official <df11-dir>] [--repeat <n>]
 *
 * Not a GPU benchmark: it runs on any machine.
 */
import { parseArgs } from 'node:util';
import { planUnits } from '../src/format/compress-model.ts';
import { defaultPattern } from '../src/format/config.ts';
import { encodeUnit, type MatrixInput } from '../src/format/df11-encoder.ts';
import { unitStoredBytes } from '../src/format/df11-writer.ts';
import { openModel } from '../src/format/model-reader.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import { asUint16 } from '../src/format/safetensors.ts';

const DEFAULT_MODELS = ['models/stories-15m', 'models/stories-micro'];
const OFFICIAL = 'test/fixtures/official-df11/stories-15m';

const usage = `usage: npx tsx bench/compress-bench.ts [<hf-model-dir>...] [--official <df11-dir>] [--repeat <n>]

Encodes every unit of each BF16 model with the default pattern (one unit per decoder layer, plus
lm_head and the embedding) in this thread and prints one JSON line per model:
  {"model","weights","seconds","weights_per_s","ratio"}
seconds counts encoding only (best of --repeat runs, default 3; reading the files is excluded);
ratio = DF11 bytes (all six unit tensors) / BF16 bytes over the compressed units.
A last line gives the ratio of an official DF11 directory computed the same way
(default ${OFFICIAL}; --official '' skips it).
Default models: ${DEFAULT_MODELS.join(', ')}.`;

interface BenchLine {
  model: string;
  weights: number | null;
  seconds: number | null;
  weights_per_s: number | null;
  ratio: number;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { official: { type: 'string' }, repeat: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
});
if (values.help) {
  process.stdout.write(`${usage}\n`);
} else {
  const repeat = Math.max(1, Math.min(100, Number(values.repeat ?? 3) || 1));
  for (const dir of positionals.length > 0 ? positionals : DEFAULT_MODELS) {
    print(await benchModel(dir, repeat));
  }
  const official = values.official ?? OFFICIAL;
  if (official !== '') print(await officialRatio(official));
}

function print(line: BenchLine): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

async function benchModel(dir: string, repeat: number): Promise<BenchLine> {
  const model = await openModel(directoryFiles(dir));
  const units: Array<{ name: string; matrices: MatrixInput[] }> = [];
  for (const [name, tensors] of planUnits(model, defaultPattern(model.spec))) {
    const matrices: MatrixInput[] = [];
    for (const t of tensors) {
      const { shape, data } = await model.readTensor(t, 'BF16');
      matrices.push({ name: t, shape, bits: asUint16(data) });
    }
    units.push({ name, matrices });
  }
  let best = Infinity;
  let weights = 0;
  let stored = 0;
  for (let r = 0; r < repeat; r++) {
    weights = 0;
    stored = 0;
    const t0 = performance.now();
    for (const u of units) {
      const unit = encodeUnit(u.name, u.matrices);
      weights += unit.signMantissa.length;
      stored += unitStoredBytes(unit);
    }
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return { model: dir.replace(/^.*\/(?=[^/]+\/?$)/, ''), weights, seconds: round(best), weights_per_s: Math.round(weights / best), ratio: round(stored / (2 * weights)) };
}

async function officialRatio(dir: string): Promise<BenchLine> {
  const model = await openModel(directoryFiles(dir));
  let weights = 0;
  let stored = 0;
  for (const name of model.unitNames) {
    const unit = await model.readUnit(name);
    weights += unit.signMantissa.length;
    stored += unitStoredBytes(unit);
  }
  return { model: `official:${dir.replace(/^.*\/(?=[^/]+\/?$)/, '')}`, weights, seconds: null, weights_per_s: null, ratio: round(stored / (2 * weights)) };
}

function round(x: number): number {
  return Number(x.toPrecision(6));
}
