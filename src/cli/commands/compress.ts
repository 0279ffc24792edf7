import { readdir } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Df11Error } from '../../errors.ts';
import { compressModel, type CompressSummary } from '../../format/compress-model.ts';
import { directoryFiles, directorySink } from '../../format/node-files.ts';
import type { Command } from '../command.ts';
import { nodeEncoder } from '../encoder-pool.ts';

const usage = `usage: df11 compress <hf-model-dir> <out-dir> [--pattern <json>] [--threads <n>] [--force]

Compresses a Hugging Face BF16 model (llama, mistral, qwen2, qwen3) into the official DFloat11 layout.
  --pattern <json>  pattern_dict: {"<module regex>": ["sub.linear", ...]}; default: one unit per
                    decoder layer (q,k,v,o,gate,up,down), plus lm_head and the embedding
  --threads <n>     encode n units at once in worker threads (default: one per core; 1 = this thread)
  --force           write into a non-empty <out-dir>
Progress goes to stderr, the summary table to stdout.`;

export const command: Command = {
  name: 'compress',
  summary: 'compress an HF BF16 model directory into DFloat11',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { pattern: { type: 'string' }, threads: { type: 'string' }, force: { type: 'boolean' } },
    });
    if (positionals.length !== 2) {
      process.stderr.write(`${usage}\n`);
      return 2;
    }
    const [input, output] = positionals as [string, string];
    await ensureWritableDir(output, values.force === true);
    const encoder = nodeEncoder(values.threads === undefined ? undefined : parseThreads(values.threads));
    const summary = await compressModel(directoryFiles(input), directorySink(output), {
      encoder,
      pattern: values.pattern === undefined ? undefined : parsePattern(values.pattern),
      onUnit: (p) =>
        process.stderr.write(
          `[${p.index + 1}/${p.count}] ${p.unit}: ${p.elements} weights, ${ratio(p.compressedBytes, p.elements)}, ${bitsPerWeight(p.compressedBytes, p.elements)} bits/weight, ${p.seconds.toFixed(2)} s\n`,
        ),
    }).finally(() => encoder.close());
    process.stdout.write(summaryTable(summary));
    return 0;
  },
};

/** Refuses to mix a new model with the files of an old one unless forced. */
export async function ensureWritableDir(dir: string, force: boolean): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  if (entries.length > 0 && !force) {
    throw new Df11Error('bad-request', `${dir} is not empty (use --force to write into it anyway)`);
  }
}

export function parseThreads(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1 || n > 256) throw new Df11Error('bad-request', `--threads ${text} must be an integer 1..256`);
  return n;
}

function parsePattern(text: string): Record<string, string[]> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Df11Error('bad-request', `--pattern is not valid JSON: ${(e as Error).message}`);
  }
  const ok =
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => Array.isArray(v) && v.every((s) => typeof s === 'string'));
  if (!ok) throw new Df11Error('bad-request', '--pattern must be a JSON object of regex → list of sub-module names');
  return value as Record<string, string[]>;
}

/** Stored size as a percentage of BF16 (2 bytes per weight). */
const ratio = (bytes: number, elements: number): string => `${((100 * bytes) / (2 * elements)).toFixed(2)}%`;
const bitsPerWeight = (bytes: number, elements: number): string => ((8 * bytes) / elements).toFixed(3);

export function summaryTable(s: CompressSummary): string {
  const row = (name: string, elements: number, bytes: number): string[] => [
    name,
    String(elements),
    ratio(bytes, elements),
    bitsPerWeight(bytes, elements),
  ];
  const rows = [...s.units.map((u) => row(u.unit, u.elements, u.compressedBytes)), row('total', s.elements, s.compressedBytes)];
  const head = ['unit', 'weights', 'ratio', 'bits/weight'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const rate = s.seconds > 0 ? Math.round(s.elements / s.seconds) : 0;
  const whole = `whole model: ${s.originalBytes} → ${s.storedBytes} tensor bytes (${((100 * s.storedBytes) / s.originalBytes).toFixed(2)}%)`;
  return `${[line(head), ...rows.map(line)].join('\n')}\n${whole}\n${s.seconds.toFixed(2)} s, ${rate} weights/s\n`;
}
