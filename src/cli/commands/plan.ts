import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { Df11Error, isDf11Error } from '../../errors.ts';
import { specFromConfig } from '../../format/config.ts';
import { directoryFiles } from '../../format/node-files.ts';
import { DEFAULT_CHUNK_TOKENS, type WeightMode } from '../../model/layout.ts';
import { DEFAULT_CONTEXT, df11UnitSizes, planMemory, type MemoryPlan } from '../../model/planner.ts';
import { parseBytes } from '../byte-size.ts';
import type { Command } from '../command.ts';

const usage = `usage: df11 plan <config.json> [--budget 16GB] [--context N] [--resident auto|N] [--prefill ${DEFAULT_CHUNK_TOKENS}] [--df11-bytes N] [--kv-cache f16|f32] [--json]

Plans GPU memory for a Hugging Face model in BF16 and in DF11, side by side: weights, the DF11 decode
buffer, activations, the KV cache, and in DF11 the memory/speed dial: the context first (--context, else
${DEFAULT_CONTEXT} tokens), then as many layers kept decoded (resident BF16, BF16 speed) as the rest of the
budget allows, then the LM head; with everything resident an unasked context takes the rest (capped at
max_position_embeddings). See src/model/planner.ts for every formula.

--budget      GPU memory: bytes, or with a unit: 16GB, 16GiB, 512MB (GB/MB mean GiB/MiB; default 16GB)
--context     KV cache positions wanted (cut to what the budget buys)
--resident    DF11 layers kept resident in BF16: auto (default) or a count (the head too at all layers)
--df11-bytes  real bytes of the compressed units (otherwise: read from the DF11 files next to
              config.json when there are any, else estimated at 10.9 bits per weight)
--kv-cache    KV cache element type (default f16, what GPUs use; f32 on CPU adapters)
--json        one JSON object: { config, budgetBytes, bf16: plan | { error }, df11: plan | { error } }`;

export const command: Command = {
  name: 'plan',
  summary: 'GPU memory plan (weights, decode buffer, activations, KV cache, context, resident layers), BF16 vs DF11',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        budget: { type: 'string', default: '16GB' },
        prefill: { type: 'string', default: String(DEFAULT_CHUNK_TOKENS) },
        context: { type: 'string' },
        resident: { type: 'string', default: 'auto' },
        'df11-bytes': { type: 'string' },
        'kv-cache': { type: 'string', default: 'f16' },
        json: { type: 'boolean', default: false },
      },
    });
    if (positionals.length !== 1) {
      process.stderr.write(`${usage}\n`);
      return 2;
    }
    const configPath = positionals[0]!;
    let config: unknown;
    try {
      config = JSON.parse(await readFile(configPath, 'utf8'));
    } catch (e) {
      throw new Df11Error('config', `cannot read ${configPath}: ${(e as Error).message}`, { cause: e });
    }
    const spec = specFromConfig(config);
    const kvCache = values['kv-cache'];
    if (kvCache !== 'f16' && kvCache !== 'f32') throw new Df11Error('bad-request', `--kv-cache must be f16 or f32, got ${kvCache}`);
    const budgetBytes = parseBytes(values.budget);
    const prefillChunk = Number(values.prefill);
    const df11WeightBytes = values['df11-bytes'] !== undefined ? parseBytes(values['df11-bytes']) : undefined;
    const units = df11WeightBytes === undefined ? await df11UnitSizes(directoryFiles(dirname(configPath)), config) : undefined;
    const contextLength = values.context === undefined ? undefined : Number(values.context);
    const residentLayers = values.resident === 'auto' ? 'auto' : Number(values.resident);
    const plans = {
      bf16: tryPlan(() => planMemory(spec, { mode: 'bf16', budgetBytes, prefillChunk, kvDtype: kvCache, contextLength })),
      df11: tryPlan(() => planMemory(spec, { mode: 'df11', budgetBytes, prefillChunk, df11WeightBytes, units, kvDtype: kvCache, contextLength, residentLayers })),
    };
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ config: configPath, budgetBytes, ...plans })}\n`);
    } else {
      process.stdout.write(table(configPath, spec.numLayers, budgetBytes, plans));
    }
    return 0;
  },
};

type PlanOrError = MemoryPlan | { error: { code: string; message: string } };

function tryPlan(plan: () => MemoryPlan): PlanOrError {
  try {
    return plan();
  } catch (e) {
    if (isDf11Error(e, 'model-too-large') || isDf11Error(e, 'gpu-limits')) return { error: { code: e.code, message: e.message } };
    throw e;
  }
}

function table(configPath: string, layers: number, budgetBytes: number, plans: { bf16: PlanOrError; df11: PlanOrError }): string {
  const df11Label = 'error' in plans.df11 || !plans.df11.weightsEstimated ? 'DF11' : 'DF11 (10.9-bit est.)';
  const rows: Array<[string, (p: MemoryPlan) => string]> = [
    ['resident weights', (p) => size(p.weightBytes)],
    ['decode buffer', (p) => size(p.transientBytes)],
    [`activations (${'error' in plans.bf16 ? DEFAULT_CHUNK_TOKENS : plans.bf16.prefillChunk}-token chunk)`, (p) => size(p.activationBytes)],
    ['KV cache', (p) => size(p.kvCacheBytes)],
    ['RoPE table', (p) => size(p.ropeTableBytes)],
    ['KV bytes / token', (p) => size(p.kvBytesPerToken)],
    ['context', (p) => p.maxContext.toLocaleString('en-US')],
    ['  by memory alone', (p) => p.maxContextByMemory.toLocaleString('en-US')],
    ['  limited by', (p) => p.limitedBy],
    ['resident BF16', (p) => `${p.resident.layers} of ${p.resident.totalLayers} layers${p.resident.head ? ' + head' : ''}`],
  ];
  const cell = (plan: PlanOrError, f: (p: MemoryPlan) => string, first: boolean): string =>
    'error' in plan ? (first ? 'does not fit' : '') : f(plan);
  const lines = [`${configPath}: ${layers} layers, budget ${size(budgetBytes)}`, '', `${''.padEnd(30)}${'BF16'.padStart(26)}${df11Label.padStart(26)}`];
  rows.forEach(([label, f], i) => {
    lines.push(`${label.padEnd(30)}${cell(plans.bf16, f, i === 0).padStart(26)}${cell(plans.df11, f, i === 0).padStart(26)}`);
  });
  for (const [mode, plan] of Object.entries(plans) as Array<[WeightMode, PlanOrError]>) {
    if ('error' in plan) lines.push('', `${mode.toUpperCase()}: ${plan.error.message}`);
  }
  return `${lines.join('\n')}\n`;
}

function size(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  if (bytes >= 2 ** 10) return `${(bytes / 2 ** 10).toFixed(1)} KiB`;
  return `${bytes} B`;
}
