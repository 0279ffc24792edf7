/**
 * Encoding DF11 in worker threads allocates and frees large buffers for every unit, and V8's parallel GC
 * helper threads then compete with the encoder threads for the cores: on 2 cores, 2 encoder threads ran at
 * 1.46–1.52× one thread with them and 1.56–1.78× without (same machine, same load, bench/compress-threads.ts).
 * Node cannot set that V8 flag on a running process or on a worker, so the command runs again in a child
 * node started with `--single-threaded-gc`.
 */
import { spawnSync } from 'node:child_process';

export const SINGLE_THREADED_GC = '--single-threaded-gc';

/** Runs `script args` again in a node with a single-threaded GC; its exit code, or null if this one already is. */
export function rerunWithSingleThreadedGc(script: string, args: readonly string[]): number | null {
  if (process.execArgv.includes(SINGLE_THREADED_GC)) return null;
  const child = spawnSync(process.execPath, [SINGLE_THREADED_GC, ...process.execArgv, script, ...args], { stdio: 'inherit' });
  return child.status ?? 1;
}
