import { parseArgs } from 'node:util';
import { Df11Error } from '../../errors.ts';
import { ChatTemplate } from '../../engine/chat-template.ts';
import { Sampler } from '../../engine/sampler.ts';
import { StreamingDetokenizer, TextTokenizer } from '../../engine/tokenizer.ts';
import { readJson } from '../../format/byte-source.ts';
import { openModel } from '../../format/model-reader.ts';
import { directoryFiles } from '../../format/node-files.ts';
import { createNodeGpu } from '../../gpu/node.ts';
import { createGenerator, defaultWeightMode } from '../../model/generator.ts';
import type { Command } from '../command.ts';

const usage = `usage: df11 run <model-dir> (--prompt TEXT | --chat TEXT) [options]

Generates text with the GPU forward (real GPU when present, SwiftShader otherwise). The generated text
alone goes to stdout as it is produced; load time, speeds and GPU memory go to stderr.
<model-dir> holds an HF BF16 model or a DF11 directory. Weights are DF11 (compressed on load if
needed) on GPUs and BF16 (decoded once at load if needed) on CPU adapters such as SwiftShader, where
per-layer decoding is very slow; --df11 / --bf16 force either. Outputs are identical bit for bit.

  --prompt TEXT       raw prompt (no special tokens added)
  --chat TEXT         one user message through the model's chat template (with the generation prompt)
  --temperature T     default 0 = greedy, so runs reproduce (HF's greedy reference) unless asked otherwise
  --top-p P           default 1 (off)
  --top-k K           default 0 (off)
  --seed N            sampling seed (default random)
  --max-tokens N      default 48 (the length of the bundled models' reference continuations)
  --context N         KV cache positions (default: prompt + max tokens, at most max_position_embeddings)
  --bf16, --df11      force the weight mode (see above)

Stops at the model's eos ids (config.json and generation_config.json) and, with --chat, at <|im_end|>
when the vocabulary has it.`;

export const command: Command = {
  name: 'run',
  summary: 'generate text from a prompt on the GPU (DF11 or BF16 weights)',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        prompt: { type: 'string' },
        chat: { type: 'string' },
        temperature: { type: 'string', default: '0' },
        'top-p': { type: 'string', default: '1' },
        'top-k': { type: 'string', default: '0' },
        seed: { type: 'string' },
        'max-tokens': { type: 'string', default: '48' },
        context: { type: 'string' },
        bf16: { type: 'boolean', default: false },
        df11: { type: 'boolean', default: false },
      },
    });
    if (positionals.length !== 1 || (values.prompt === undefined) === (values.chat === undefined)) {
      process.stderr.write(`${usage}\n`);
      return 2;
    }
    const num = (name: string, v: string | undefined): number | undefined => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isFinite(n)) throw new Df11Error('bad-request', `--${name} must be a number, got '${v}'`);
      return n;
    };
    const maxTokens = num('max-tokens', values['max-tokens'])!;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new Df11Error('bad-request', '--max-tokens must be a positive integer');
    const sampler = new Sampler({
      temperature: num('temperature', values.temperature),
      top_p: num('top-p', values['top-p']),
      top_k: num('top-k', values['top-k']),
      seed: num('seed', values.seed),
    });
    if (values.bf16 && values.df11) throw new Df11Error('bad-request', '--bf16 and --df11 exclude each other');
    const files = directoryFiles(positionals[0]!);
    const log = (line: string) => process.stderr.write(`${line}\n`);

    const started = performance.now();
    const tokenizer = await TextTokenizer.fromFiles(files);
    const stopIds = new Set<number>();
    let promptText = values.prompt ?? '';
    if (values.chat !== undefined) {
      const template = ChatTemplate.fromTokenizer(tokenizer);
      if (!template) throw new Df11Error('config', `${files.location} has no chat_template; use --prompt`);
      promptText = template.render([{ role: 'user', content: values.chat }], true);
      const imEnd = tokenizer.tokenId('<|im_end|>');
      if (imEnd !== undefined) stopIds.add(imEnd);
    }
    const promptIds = tokenizer.encode(promptText);
    if (promptIds.length === 0) throw new Df11Error('bad-request', 'the prompt is empty');

    const model = await openModel(files);
    for (const id of [...model.spec.eosTokenIds, ...(await generationEos(files))]) stopIds.add(id);
    const contextLength = num('context', values.context) ?? Math.min(promptIds.length + maxTokens, model.spec.maxPositionEmbeddings);
    if (!Number.isInteger(contextLength) || contextLength < 1) throw new Df11Error('bad-request', '--context must be a positive integer');
    const gpu = await createNodeGpu();
    const mode = values.bf16 ? 'bf16' : values.df11 ? 'df11' : defaultWeightMode(gpu);
    const gen = await createGenerator(gpu, model, { mode, contextLength });
    try {
      const mem = gen.memory();
      log(`df11 run: ${files.location} on ${gpu.adapterInfo.vendor} ${gpu.adapterInfo.architecture} (${gpu.adapterInfo.description}), ${mode} weights, loaded in ${seconds(performance.now() - started)}`);
      log(`  GPU memory: weights ${mib(mem.weightBytes)} (BF16 would be ${mib(mem.bf16WeightBytes)}), transient ${mib(mem.transientBytes)}, KV cache ${mib(mem.kvCacheBytes)} for ${contextLength} positions, activations ${mib(mem.activationBytes)}`);

      const t0 = performance.now();
      let logits = await gen.prefill(promptIds);
      const prefillMs = performance.now() - t0;
      const detok = new StreamingDetokenizer(tokenizer);
      const history = [...promptIds];
      let generated = 0;
      let decodes = 0;
      let decodeMs = 0;
      for (;;) {
        const id = sampler.sample(logits, history);
        if (stopIds.has(id)) break;
        history.push(id);
        generated++;
        process.stdout.write(detok.push(id));
        if (generated >= maxTokens || gen.position >= gen.contextLength) break;
        const t = performance.now();
        logits = await gen.decode(id);
        decodeMs += performance.now() - t;
        decodes++;
      }
      process.stdout.write(detok.flush());
      log('');
      log(`  prefill: ${promptIds.length} tokens in ${seconds(prefillMs)} (${rate(promptIds.length, prefillMs)} tokens/s)`);
      log(`  decode: ${generated} tokens generated, ${decodes} decode steps in ${seconds(decodeMs)} (${rate(decodes, decodeMs)} tokens/s)`);
      return 0;
    } finally {
      gen.dispose();
      gpu.destroy();
    }
  },
};

/** eos ids of generation_config.json, if the directory has one. */
async function generationEos(files: ReturnType<typeof directoryFiles>): Promise<number[]> {
  if (!(await files.list()).includes('generation_config.json')) return [];
  const config = await readJson<{ eos_token_id?: number | number[] | null }>(files, 'generation_config.json');
  const eos = config.eos_token_id;
  return eos === undefined || eos === null ? [] : Array.isArray(eos) ? eos : [eos];
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const rate = (tokens: number, ms: number) => (ms > 0 ? ((tokens * 1000) / ms).toFixed(2) : '-');
