/**
 * Parallel DF11 compression (the pool behind `df11 compress --threads N`): the same units of N(0, 0.02)
 * BF16 weights encoded with 1 thread (in-thread, what --threads 1 does) and with N worker threads.
 * Workers are started and warmed up before timing; timing covers the copies to and from the workers.
 * Prints one JSON line per thread count, with the speedup over 1 thread; best of --repeat runs.
 *
 *   npx tsx bench/compress-threads.ts                                  # 1 vs 2 threads, 8 units of 4 M weights
 *   npx tsx bench/compress-threads.ts --threads 1,2,4 --units 16 --weights 4194304 --repeat 3
 *
 * Not a CPU-GPU benchmark: run it on any machine with at least as many idle cores as threads.
 */
import { parseArgs } from 'node:util';
import { nodeEncoder } from '../src/cli/encoder-pool.ts';
import type { MatrixInput } from '../src/format/df11-encoder.ts';
import { normalBf16 } from '../src/testing/random-weights.ts';
import { emit, sig } from './report.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1,2' },
    units: { type: 'string', default: '8' },
    weights: { type: 'string', default: String(4 * 2 ** 20) },
    repeat: { type: 'string', default: '3' },
  },
});
const threadCounts = values.threads.split(',').map(Number);
const unitCount = Number(values.units);
const weights = Number(values.weights);
const repeat = Math.max(1, Number(values.repeat));

const units: MatrixInput[][] = Array.from({ length: unitCount }, (_, u) => [
  { name: `u${u}.weight`, shape: [weights / 1024, 1024], bits: normalBf16(weights, 1000 + u) },
]);

let base: number | null = null;
for (const threads of threadCounts) {
  const encoder = nodeEncoder(threads);
  try {
    // Warm-up: every worker started and its code compiled.
    await Promise.all(Array.from({ length: threads }, (_, i) => encoder.encode(`warm${i}`, [{ name: 'w', shape: [4096], bits: normalBf16(4096, i) }])));
    let best = Infinity;
    for (let r = 0; r < repeat; r++) {
      const t0 = performance.now();
      await Promise.all(units.map((matrices, u) => encoder.encode(`u${u}`, matrices)));
      best = Math.min(best, (performance.now() - t0) / 1000);
    }
    base ??= best;
    emit({
      bench: 'compress-threads',
      threads,
      units: unitCount,
      weights: unitCount * weights,
      seconds: sig(best),
      weights_per_s: sig((unitCount * weights) / best),
      speedup_vs_first: sig(base / best),
    });
  } finally {
    await encoder.close();
  }
}
