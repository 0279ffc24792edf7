import { parseArgs } from 'node:util';
import { Df11Error } from '../../errors.ts';
import { createEngine } from '../../engine/engine.ts';
import { nodeBackend } from '../../engine/node-backend.ts';
import type { LoadProgress, SamplingOptions } from '../../engine/types.ts';
import type { Gpu } from '../../gpu/gpu.ts';
import { parseBytes } from '../byte-size.ts';
import type { Command } from '../command.ts';

const usage = `usage: df11 run <model-dir> (--prompt TEXT | --chat TEXT) [options]

Generates text with the engine on the GPU forward (real GPU when present, SwiftShader otherwise). The
generated text alone goes to stdout as it is produced; load time, speeds and GPU memory go to stderr.
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
  --context N         KV cache positions (default: what the budget buys; DF11: 4096, more once every
                      layer is resident; at most max_position_embeddings)
  --resident N|auto   DF11 layers kept decoded (resident BF16, the head too at all layers); default auto:
                      as many as the budget allows after the context (see df11 plan)
  --budget SIZE       GPU memory for the model: weights, transient buffers, KV cache (default 4GB;
                      units as in df11 plan: 16GB, 512MB, bytes)
  --bf16, --df11      force the weight mode (see above)
  --kv-cache f16|f32  KV cache element type (default f16 on GPUs, f32 on CPU adapters)

Stops at the model's eos ids (config.json, generation_config.json and the tokenizer's eos token) and,
with --chat, at <|im_end|> when the vocabulary has it.`;

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
        budget: { type: 'string' },
        resident: { type: 'string' },
        'kv-cache': { type: 'string' },
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
    const positiveInteger = (name: string, v: string | undefined): number | undefined => {
      const n = num(name, v);
      if (n !== undefined && (!Number.isInteger(n) || n < 1)) throw new Df11Error('bad-request', `--${name} must be a positive integer`);
      return n;
    };
    const sampling: SamplingOptions = {
      temperature: num('temperature', values.temperature),
      top_p: num('top-p', values['top-p']),
      top_k: num('top-k', values['top-k']),
      seed: num('seed', values.seed),
      max_tokens: positiveInteger('max-tokens', values['max-tokens']),
    };
    const contextLength = positiveInteger('context', values.context);
    const budget = values.budget === undefined ? undefined : parseBytes(values.budget);
    const kvCache = values['kv-cache'];
    if (kvCache !== undefined && kvCache !== 'f16' && kvCache !== 'f32') throw new Df11Error('bad-request', `--kv-cache must be f16 or f32, got '${kvCache}'`);
    if (values.bf16 && values.df11) throw new Df11Error('bad-request', '--bf16 and --df11 exclude each other');
    const dir = positionals[0]!;
    const log = (line: string) => process.stderr.write(`${line}\n`);

    const gpus: Gpu[] = [];
    const engine = createEngine({ backend: nodeBackend({ onGpu: (gpu) => gpus.push(gpu) }) });
    try {
      const started = performance.now();
      let phase: LoadProgress['phase'] | null = null;
      await engine.load(dir, {
        mode: values.bf16 ? 'bf16' : values.df11 ? 'df11' : undefined,
        contextLength,
        budget,
        residentLayers: values.resident === undefined || values.resident === 'auto' ? 'auto' : Number(values.resident),
        kvCache,
        onProgress: (p) => {
          if (p.phase !== phase) log(`df11 run: ${p.phase}…`);
          phase = p.phase;
        },
      });
      const loadMs = performance.now() - started;
      const loaded = await engine.stats();
      const mem = loaded.memory!;
      const adapter = gpus.at(-1)?.adapterInfo;
      const on = adapter ? ` on ${adapter.vendor} ${adapter.architecture} (${adapter.description})` : '';
      log(`df11 run: ${dir}${on}, ${mem.weightMode} weights, loaded in ${seconds(loadMs)}`);
      log(`  GPU memory: weights ${mib(mem.weightBytes)} (BF16 would be ${mib(mem.bf16WeightBytes)}), transient ${mib(mem.transientBytes)}, KV cache ${mib(mem.kvCacheBytes)} for ${loaded.contextLength} positions, activations ${mib(mem.activationBytes)}`);
      if (mem.weightMode === 'df11') log(`  resident BF16: ${mem.resident.layers} of ${mem.resident.totalLayers} layers${mem.resident.head ? ' + head' : ''}`);

      if (values.chat !== undefined) {
        const stream = await engine.chat.completions.create({ messages: [{ role: 'user', content: values.chat }], stream: true, ...sampling });
        for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta.content ?? '');
      } else {
        for await (const piece of engine.generate(values.prompt!, sampling)) process.stdout.write(piece);
      }
      const last = (await engine.stats()).last!;
      log('');
      log(`  prefill: ${last.prefillTokens} tokens at ${last.prefillTokensPerSecond.toFixed(2)} tokens/s`);
      log(`  decode: ${last.completionTokens} tokens generated at ${last.decodeTokensPerSecond.toFixed(2)} tokens/s`);
      return 0;
    } finally {
      await engine.unload();
      for (const gpu of gpus) gpu.destroy();
    }
  },
};

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
