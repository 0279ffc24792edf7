/**
 * The fuzz suite's CI slice (issue 15): seeded mutations of safetensors headers, configs, shard indexes,
 * DF11 arrays and whole directories on the CPU, and corrupt units through the GPU kernel (SwiftShader)
 * compared with the CPU decoder, each case in a worker process with a time limit. No case may throw
 * anything but a Df11Error, hang, crash its process, or make the GPU and CPU decoders disagree.
 * `npm run fuzz -- --cases N` runs any number.
 */
import { describe, expect, it } from 'vitest';
import { CPU_TARGETS, formatSummary, runFuzz } from '../src/testing/fuzz/runner.ts';

describe('fuzz', () => {
  it('the runner tells exceptions, hangs and crashes apart (and recovers from each)', async () => {
    const s = await runFuzz({
      cpuCases: 4,
      gpuCases: 0,
      seed: 1,
      workers: 1,
      timeoutMs: 5000,
      firstCaseTimeoutMs: 5000,
      targets: ['self-test-throw', 'self-test-hang', 'self-test-crash', 'df11'],
    });
    expect(s.counts['self-test-throw']).toEqual({ exception: 1 });
    expect(s.counts['self-test-hang']).toEqual({ hang: 1 });
    expect(s.counts['self-test-crash']).toEqual({ crash: 1 });
    expect(Object.values(s.counts.df11 ?? {}).reduce((a, b) => a + b, 0)).toBe(1);
    expect(s.failures.map((f) => f.outcome)).toEqual(['exception', 'hang', 'crash']);
  });

  it('2,000 CPU cases and 200 GPU cases: no exception, hang, crash or GPU/CPU disagreement', async () => {
    const s = await runFuzz({ cpuCases: 2000, gpuCases: 200, seed: 1 });
    console.log(formatSummary(s));
    expect(s.failures).toEqual([]);
    // every target ran its share, and the mutations reach past the first check (not everything is rejected)
    for (const t of CPU_TARGETS) expect(Object.values(s.counts[t] ?? {}).reduce((a, b) => a + b, 0)).toBe(400);
    expect(Object.values(s.counts.gpu ?? {}).reduce((a, b) => a + b, 0)).toBe(200);
    expect(s.counts.gpu?.typed).toBeGreaterThan(0);
    expect((s.counts.df11?.identical ?? 0) + (s.counts.df11?.silent ?? 0)).toBeGreaterThan(0);
  });
});
