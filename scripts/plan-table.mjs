// Prints the README's "max context by GPU budget" table from `df11 plan --json` (f16 KV cache, the default;
// nothing resident: --resident 0), then the residency table of Llama-3.1-8B (the memory/speed dial):
//   node scripts/plan-table.mjs
import { execFileSync } from 'node:child_process';

const MODELS = [
  ['Llama-3.1-8B', 'llama-3.1-8b'],
  ['Qwen3-8B', 'qwen3-8b'],
  ['Llama-3.2-1B', 'llama-3.2-1b'],
  ['Gemma-3-1B', 'gemma-3-1b'],
  ['Phi-4-mini', 'phi-4-mini'],
  ['SmolLM3-3B', 'smollm3-3b'],
  ['Qwen3.5-2B', 'qwen3.5-2b'],
];
const BUDGETS = ['8GB', '16GB', '24GB'];

const cell = (p) => {
  if (p.error) return 'does not fit';
  const n = (x) => x.toLocaleString('en-US');
  return p.limitedBy === 'memory' ? n(p.maxContext) : `${n(p.maxContext)} (cap; ${n(p.maxContextByMemory)} by memory)`;
};
const lines = ['| model | budget | BF16 | DF11 |', '|---|---|---|---|'];
for (const [name, file] of MODELS) {
  for (const budget of BUDGETS) {
    const out = execFileSync('node', ['bin/df11.mjs', 'plan', `test/fixtures/configs/${file}.json`, '--budget', budget, '--resident', '0', '--json'], { encoding: 'utf8' });
    const plan = JSON.parse(out.trim().split('\n').at(-1));
    lines.push(`| ${name} | ${budget.replace('GB', ' GB')} | ${cell(plan.bf16)} | ${cell(plan.df11)} |`);
  }
}
console.log(lines.join('\n'));

// The dial: Llama-3.1-8B at the default context and at 32k, resident layers chosen by the planner.
const resident = (p) => (p.error ? '' : `${p.resident.layers} of ${p.resident.totalLayers}${p.resident.head ? ' + head' : ' layers'}`);
const plan = (budget, more) => {
  const out = execFileSync('node', ['bin/df11.mjs', 'plan', 'test/fixtures/configs/llama-3.1-8b.json', '--budget', budget, ...more, '--json'], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1));
};
const dial = ['| budget | default: context | resident BF16 | `--context 32768`: context | resident BF16 | BF16 mode: context |', '|---|---|---|---|---|---|'];
for (const budget of ['10GB', '11GB', '12GB', '13GB', '14GB', '16GB', '20GB', '24GB']) {
  const [auto, long] = [plan(budget, []), plan(budget, ['--context', '32768'])];
  const ctx = (p) => (p.error ? 'does not fit' : p.maxContext.toLocaleString('en-US'));
  dial.push(`| ${budget.replace('GB', ' GB')} | ${ctx(auto.df11)} | ${resident(auto.df11)} | ${ctx(long.df11)} | ${resident(long.df11)} | ${ctx(auto.bf16)} |`);
}
console.log(`\n${dial.join('\n')}`);
