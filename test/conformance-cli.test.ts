/**
 * `df11 run` and `df11 logits` end to end (Node, SwiftShader here). On SwiftShader the CLI defaults to
 * BF16 weights: DF11 mode gives bit-identical logits (test/conformance-models.test.ts) but decodes every
 * layer per token, which SwiftShader does at about a MB/s; DF11 mode is checked on a short prefix.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readTextRefs } from '../src/testing/model-reference.ts';

const run = promisify(execFile);
const STORIES = 'models/stories-15m';
const ref = readTextRefs(STORIES);

async function df11(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run('node', ['bin/df11.mjs', ...args], { maxBuffer: 64 << 20, timeout: 600_000 });
}

describe('df11 run', () => {
  it('prints exactly the reference greedy continuation of the chat prompt (48 tokens)', async () => {
    // The command line; on SwiftShader it picks BF16 weights (see defaultWeightMode).
    const { stdout, stderr } = await df11('run', STORIES, '--chat', 'Tell me a story about Max.', '--temperature', '0');
    expect(stdout).toBe(ref[2]!.greedy_text);
    expect(stderr).toMatch(/prefill: 19 tokens/);
    expect(stderr).toMatch(/decode: 48 tokens generated/);
  }, 600_000);

  it('DF11 weights (compressed on load) start the same story', async () => {
    // --resident 0: every layer decoded per step (the planner would keep a model this small all resident).
    const { stdout, stderr } = await df11('run', 'models/stories-micro', '--prompt', 'Once upon a time, there was a little', '--max-tokens', '6', '--df11', '--resident', '0');
    expect(readTextRefs('models/stories-micro')[0]!.greedy_text.startsWith(stdout)).toBe(true);
    expect(stdout.length).toBeGreaterThan(10);
    expect(stderr).toMatch(/df11 weights/);
    expect(stderr).toMatch(/resident BF16: 0 of \d+ layers\n/);
  }, 600_000);
});

describe('df11 logits', () => {
  it('prints one JSON line matching the HF reference', async () => {
    const r = ref[0]!;
    const { stdout } = await df11('logits', STORIES, '--ids', r.input_ids.join(','), '--bf16');
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const out = JSON.parse(lines[0]!) as { mode: string; ids: number[]; last_logits: number[]; argmax_per_position: number[] };
    expect(out.mode).toBe('bf16');
    expect(out.ids).toEqual(r.input_ids);
    expect(out.argmax_per_position).toEqual(r.argmax_per_position);
    expect(Math.max(...out.last_logits.map((v, i) => Math.abs(v - r.last_logits[i]!)))).toBeLessThanOrEqual(2e-3);
  }, 600_000);
});
