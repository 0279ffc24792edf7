import { parseArgs } from 'node:util';
import { decompressModel } from '../../format/compress-model.ts';
import { directoryFiles, directorySink } from '../../format/node-files.ts';
import type { Command } from '../command.ts';
import { ensureWritableDir } from './compress.ts';

const usage = `usage: df11 decompress <df11-dir> <out-dir> [--force]

Decodes a DFloat11 model directory (ours or official) back to the Hugging Face BF16 layout:
one model.safetensors, config.json without dfloat11_config, tokenizer and generation files.
  --force  write into a non-empty <out-dir>`;

export const command: Command = {
  name: 'decompress',
  summary: 'decode a DFloat11 model directory back to HF BF16',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { force: { type: 'boolean' } } });
    if (positionals.length !== 2) {
      process.stderr.write(`${usage}\n`);
      return 2;
    }
    const [input, output] = positionals as [string, string];
    await ensureWritableDir(output, values.force === true);
    const t0 = performance.now();
    await decompressModel(directoryFiles(input), directorySink(output));
    process.stderr.write(`decompressed ${input} → ${output} in ${((performance.now() - t0) / 1000).toFixed(2)} s\n`);
    return 0;
  },
};
