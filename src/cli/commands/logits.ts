import { parseArgs } from 'node:util';
import { Df11Error } from '../../errors.ts';
import { argmax } from '../../engine/sampler.ts';
import { directoryFiles } from '../../format/node-files.ts';
import { createNodeGpu } from '../../gpu/node.ts';
import { defaultWeightMode } from '../../model/generator.ts';
import { openGenerator } from '../../model/open-generator.ts';
import type { Command } from '../command.ts';

const usage = `usage: df11 logits <model-dir> --ids 3,17,42 [--bf16 | --df11]

Runs the token ids through the GPU forward one position at a time and prints ONE JSON line:
{"model", "mode", "ids", "last_logits": [...], "argmax_per_position": [...]}
<model-dir> holds an HF BF16 model or a DF11 directory; weights are DF11 on GPUs and BF16 on CPU
adapters (SwiftShader) unless --df11 / --bf16 says otherwise (same logits bit for bit).
Real GPU when present, SwiftShader otherwise.`;

export const command: Command = {
  name: 'logits',
  summary: 'print the GPU forward\'s logits for token ids as one JSON line',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { ids: { type: 'string' }, bf16: { type: 'boolean', default: false }, df11: { type: 'boolean', default: false } },
    });
    if (positionals.length !== 1 || values.ids === undefined) {
      process.stderr.write(`${usage}\n`);
      return 2;
    }
    const ids = values.ids.split(',').map((s) => Number(s.trim()));
    if (ids.length === 0 || ids.some((id) => !Number.isSafeInteger(id) || id < 0)) {
      throw new Df11Error('bad-request', `--ids must be a comma-separated list of token ids, got '${values.ids}'`);
    }
    if (values.bf16 && values.df11) throw new Df11Error('bad-request', '--bf16 and --df11 exclude each other');
    const gpu = await createNodeGpu();
    const mode = values.bf16 ? 'bf16' : values.df11 ? 'df11' : defaultWeightMode(gpu);
    const gen = await openGenerator(gpu, directoryFiles(positionals[0]!), { mode, contextLength: ids.length });
    try {
      const argmaxes: number[] = [];
      let last: ArrayLike<number> = [];
      for (const id of ids) {
        last = await gen.decode(id);
        argmaxes.push(argmax(last));
      }
      const line = { model: positionals[0], mode, ids, last_logits: Array.from(last), argmax_per_position: argmaxes };
      process.stdout.write(`${JSON.stringify(line)}\n`);
      return 0;
    } finally {
      gen.dispose();
      gpu.destroy();
    }
  },
};
