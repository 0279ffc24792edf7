/**
 * Parallel DF11 compression (the pool behind `df11 compress --threads N`): the same units of N(0, 0.02)
 * BF16 weights encoded with 1 thread (in-thread, what --threads 1 does) and with N worker threads.
 * Workers are started and warmed up before timing; timing covers the transfers to and from the workers
 * (units are handed over as `df11 compress` hands them: fresh reads, given away). Prints one JSON line per
 * thread count, with the speedup over 1 thread, the process CPU time and the load average; best of
 * --repeat rounds, each round running every thread count once. It runs itself in a node started with
 * --single-threaded-gc, as `df11 compress` does (src/cli/single-threaded-gc.ts). A last line per thread count says how the
 * machine itself scales (a pure integer loop in N threads vs 1), which bounds the encoder's speedup.
 *
 *   npx tsx bench/compress-threads.ts                                  # 1 vs 2 threads, 8 units of 4 M weights
 *   npx tsx bench/compress-threads.ts --threads 1,2,4 --units 16 --weights 4194304 --repeat 3
 *
 * Not a CPU-GPU benchmark: run it on any machine with at least as many idle cores as threads.
 */
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { nodeEncoder } from '../src/cli/encoder-pool.ts';
import { rerunWithSingleThreadedGc } from '../src/cli/single-threaded-gc.ts';
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
// As `df11 compress` runs (bin/df11.mjs): in a node whose GC helper threads do not compete with the encoders.
const rerun = rerunWithSingleThreadedGc(fileURLToPath(import.meta.url), process.argv.slice(2));
if (rerun !== null) process.exit(rerun);
const unitCount = Number(values.units);
const weights = Number(values.weights);
const repeat = Math.max(1, Number(values.repeat));

const units: MatrixInput[][] = Array.from({ length: unitCount }, (_, u) => [
  { name: `u${u}.weight`, shape: [weights / 1024, 1024], bits: normalBf16(weights, 1000 + u) },
]);

// Every encoder started and warmed up (each worker's code compiled) before any timing.
const encoders = threadCounts.map((threads) => nodeEncoder(threads));
try {
  for (const [i, encoder] of encoders.entries()) {
    await Promise.all(Array.from({ length: threadCounts[i]! }, (_, w) => encoder.encode(`warm${w}`, [{ name: 'w', shape: [4096], bits: normalBf16(4096, w) }])));
  }
  const best = threadCounts.map(() => ({ seconds: Infinity, cpuSeconds: 0 }));
  // Rounds alternate the thread counts, so a change in the machine's load hits every count alike.
  for (let r = 0; r < repeat; r++) {
    for (const [i, encoder] of encoders.entries()) {
      // What `df11 compress` hands the pool: each unit freshly read into its own buffer, given away as a
      // transfer. The reads (copies here) are made before timing, for every thread count alike.
      const inputs = units.map((matrices) => matrices.map((m) => ({ ...m, bits: m.bits.slice() })));
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await Promise.all(inputs.map((matrices, u) => encoder.encode(`u${u}`, matrices, { transfer: true })));
      const seconds = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      if (seconds < best[i]!.seconds) best[i] = { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
    }
  }
  for (const [i, threads] of threadCounts.entries()) {
    const { seconds, cpuSeconds } = best[i]!;
    emit({
      bench: 'compress-threads',
      threads,
      units: unitCount,
      weights: unitCount * weights,
      seconds: sig(seconds),
      weights_per_s: sig((unitCount * weights) / seconds),
      speedup_vs_first: sig(best[0]!.seconds / seconds),
      // CPU time of the whole process in that run (all threads): near threads × seconds on an idle machine.
      cpu_seconds: sig(cpuSeconds),
      load_average_1m: sig(loadavg()[0]!),
    });
  }
} finally {
  await Promise.all(encoders.map((e) => e.close()));
}

// What the machine itself gives: N threads each running the same integer loop (no memory traffic) vs one,
// best of --repeat alternating rounds. Near N on idle cores; far below it on a loaded or SMT-shared host,
// and then the encoder's speedup cannot reach N either.
const ITERATIONS = 300_000_000;
const LOOP = `const { parentPort, workerData } = require('node:worker_threads');
let a = 0; for (let i = 0; i < workerData; i++) a = (Math.imul(a, 1103515245) + 12345) | 0;
parentPort.postMessage(a);`;
const spin = async (threads: number): Promise<number> => {
  const workers = Array.from({ length: threads }, () => new Worker(LOOP, { eval: true, workerData: 0 }));
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
  await Promise.all(workers.map((w) => w.terminate()));
  const timed = Array.from({ length: threads }, () => new Worker(LOOP, { eval: true, workerData: ITERATIONS }));
  const t0 = performance.now();
  await Promise.all(timed.map((w) => new Promise((resolve) => w.once('message', resolve))));
  const seconds = (performance.now() - t0) / 1000;
  await Promise.all(timed.map((w) => w.terminate()));
  return seconds;
};
const spinBest = new Map(threadCounts.map((t) => [t, Infinity]));
for (let r = 0; r < repeat; r++) for (const t of threadCounts) spinBest.set(t, Math.min(spinBest.get(t)!, await spin(t)));
for (const threads of threadCounts) {
  emit({
    bench: 'compress-threads-machine',
    threads,
    alu_scaling_vs_first: sig((threads * spinBest.get(threadCounts[0]!)!) / (threadCounts[0]! * spinBest.get(threads)!)),
    load_average_1m: sig(loadavg()[0]!),
  });
}
