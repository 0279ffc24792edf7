/**
 * The fuzz runner (Node): deals seeded cases to worker processes (child.ts, run through tsx), each case
 * under a time limit, and counts outcomes per target. A case that does not answer in time is a 'hang'
 * (its process is killed and replaced); a process that dies mid-case is a 'crash'. GPU cases all go to
 * one process (one device), the first, before it joins the CPU cases.
 *
 *   const summary = await runFuzz({ cpuCases: 2000, gpuCases: 200, seed: 1 });
 *   formatSummary(summary); // one line
 */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FAILURES, type ChildReply, type ChildRequest, type Outcome } from './protocol.ts';

/** CPU targets in dealing order (cpuTargets() in cpu-targets.ts): case i goes to CPU_TARGETS[i % 5]. */
export const CPU_TARGETS = ['safetensors', 'config', 'index', 'df11', 'directory'] as const;
/** GPU case seeds start here, apart from the CPU ones. */
const GPU_SEED_OFFSET = 1_000_000_000;

export interface FuzzOptions {
  cpuCases: number;
  gpuCases: number;
  /** First case seed (case i has seed seed + i). */
  seed: number;
  /** Worker processes (default 2). */
  workers?: number;
  /** Time limit of one case (default 20 s; a machine under load is slow, a hang never answers). */
  timeoutMs?: number;
  /** Time limit of a target's first case in a process (it builds the target's inputs; the GPU compiles). */
  firstCaseTimeoutMs?: number;
  /** CPU targets to deal cases to (default CPU_TARGETS). */
  targets?: readonly string[];
  /** Called after every case. */
  onCase?: (result: CaseResult, done: number, total: number) => void;
}

export interface CaseResult {
  target: string;
  seed: number;
  outcome: Outcome;
  detail?: string;
}

export interface FuzzSummary {
  seed: number;
  cpuCases: number;
  gpuCases: number;
  /** target → outcome → count */
  counts: Record<string, Partial<Record<Outcome, number>>>;
  /** Every case with a failing outcome (exception, hang, crash, disagree). */
  failures: CaseResult[];
  seconds: number;
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const CHILD = join(ROOT, 'src/testing/fuzz/child.ts');

interface Job {
  target: string;
  seed: number;
}

/** One worker process: sends a case, waits for its answer or its time limit. */
class Worker {
  private child: ChildProcess | undefined;
  private ready: Promise<void> | undefined;
  private warm = new Set<string>();
  private nextId = 0;

  constructor(private readonly timeoutMs: number, private readonly firstCaseTimeoutMs: number) {}

  private start(): Promise<void> {
    const child = fork(CHILD, [], { cwd: ROOT, execArgv: ['--import', 'tsx'], serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    child.stderr?.resume(); // Dawn and Node warnings: not a case outcome
    this.child = child;
    this.warm.clear();
    return new Promise((resolve, reject) => {
      const onMessage = (m: ChildReply): void => {
        if (m.id !== -1) return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve();
      };
      const onExit = (code: number | null): void => reject(new Error(`fuzz worker exited (${code}) before it was ready`));
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  }

  async run(job: Job): Promise<CaseResult> {
    if (!this.child) this.ready = this.start();
    await this.ready;
    const child = this.child!;
    const id = this.nextId++;
    const limit = this.warm.has(job.target) ? this.timeoutMs : this.firstCaseTimeoutMs;
    const result = await new Promise<CaseResult>((resolve) => {
      const done = (outcome: Outcome, detail?: string): void => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve({ ...job, outcome, ...(detail === undefined ? {} : { detail }) });
      };
      const onMessage = (m: ChildReply): void => {
        if (m.id === id) done(m.outcome, m.detail);
      };
      const onExit = (code: number | null, signal: string | null): void => {
        this.child = undefined;
        done('crash', `worker exited with ${signal ?? code}`);
      };
      const timer = setTimeout(() => {
        child.off('exit', onExit);
        child.kill('SIGKILL');
        this.child = undefined;
        done('hang', `no answer in ${limit} ms`);
      }, limit);
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.send({ id, ...job } satisfies ChildRequest);
    });
    if (this.child === child) this.warm.add(job.target);
    return result;
  }

  stop(): void {
    this.child?.disconnect();
    this.child = undefined;
  }
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzSummary> {
  const started = performance.now();
  const { cpuCases, gpuCases, seed } = options;
  const targets = options.targets ?? CPU_TARGETS;
  const cpuJobs: Job[] = Array.from({ length: cpuCases }, (_, i) => ({ target: targets[i % targets.length]!, seed: seed + i }));
  const gpuJobs: Job[] = Array.from({ length: gpuCases }, (_, i) => ({ target: 'gpu', seed: GPU_SEED_OFFSET + seed + i }));
  const total = cpuCases + gpuCases;
  const counts: FuzzSummary['counts'] = {};
  const failures: CaseResult[] = [];
  let done = 0;
  const record = (r: CaseResult): void => {
    const c = (counts[r.target] ??= {});
    c[r.outcome] = (c[r.outcome] ?? 0) + 1;
    if (FAILURES.includes(r.outcome)) failures.push(r);
    done++;
    options.onCase?.(r, done, total);
  };
  const workers = Array.from({ length: Math.max(1, options.workers ?? 2) }, () => new Worker(options.timeoutMs ?? 20_000, options.firstCaseTimeoutMs ?? 180_000));
  try {
    await Promise.all(
      workers.map(async (worker, w) => {
        for (;;) {
          const job = (w === 0 ? gpuJobs.shift() : undefined) ?? cpuJobs.shift();
          if (!job) return;
          record(await worker.run(job));
        }
      }),
    );
  } finally {
    for (const w of workers) w.stop();
  }
  return { seed, cpuCases, gpuCases, counts, failures, seconds: (performance.now() - started) / 1000 };
}

/** Count of one outcome over the CPU targets, or the GPU target. */
function total(summary: FuzzSummary, targets: readonly string[], outcome: Outcome): number {
  return targets.reduce((a, t) => a + (summary.counts[t]?.[outcome] ?? 0), 0);
}

/** One line: cases, outcomes, failures, time. */
export function formatSummary(s: FuzzSummary): string {
  const part = (targets: readonly string[]): string =>
    (['typed', 'identical', 'silent'] as const).map((o) => `${total(s, targets, o)} ${o}`).join(', ');
  const all = [...CPU_TARGETS, 'gpu'];
  const fail = (o: Outcome): number => total(s, all, o);
  return (
    `fuzz seed ${s.seed}: ${s.cpuCases} CPU cases (${part(CPU_TARGETS)}), ${s.gpuCases} GPU cases (${part(['gpu'])}); ` +
    `${fail('exception')} exceptions, ${fail('hang')} hangs, ${fail('crash')} crashes, ${fail('disagree')} GPU/CPU disagreements; ${s.seconds.toFixed(0)} s`
  );
}
