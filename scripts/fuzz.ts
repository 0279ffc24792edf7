/**
 * npm run fuzz -- [--cases N] [--gpu-cases M] [--seed S] [--workers W] [--timeout MS] [--json]
 * Seeded mutation fuzzing of the format readers and decoders (src/testing/fuzz). Prints progress, every
 * failing case (exception, hang, crash, GPU/CPU disagreement) as a JSON line, per-target counts, and a
 * summary line; exits 1 when any case failed.
 */
import { CPU_TARGETS, formatSummary, runFuzz } from '../src/testing/fuzz/runner.ts';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`--${name} needs a non-negative integer`);
  return v;
}

const cpuCases = flag('cases', 2000);
const summary = await runFuzz({
  cpuCases,
  gpuCases: flag('gpu-cases', Math.round(cpuCases / 10)),
  seed: flag('seed', 1),
  workers: flag('workers', 2),
  timeoutMs: flag('timeout', 20_000),
  onCase(r, done, total) {
    if (r.outcome === 'exception' || r.outcome === 'hang' || r.outcome === 'crash' || r.outcome === 'disagree') {
      console.log(JSON.stringify(r));
    }
    if (done % 1000 === 0 || done === total) console.error(`${done}/${total}`);
  },
});
for (const target of [...CPU_TARGETS, 'gpu']) console.log(`${target.padEnd(12)} ${JSON.stringify(summary.counts[target] ?? {})}`);
console.log(formatSummary(summary));
process.exitCode = summary.failures.length > 0 ? 1 : 0;
