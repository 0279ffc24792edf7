import { Df11Error, isDf11Error } from '../errors.ts';
import { readJson, type ModelFiles } from '../format/byte-source.ts';
import type { EngineBackend } from './backend.ts';
import { ChatTemplate } from './chat-template.ts';
import { tokenLogprob } from './logprobs.ts';
import { maxCompletionTokens, validateChatRequest } from './request.ts';
import { Sampler } from './sampler.ts';
import { StopStringMatcher } from './stop-strings.ts';
import { StreamingDetokenizer, TextTokenizer } from './tokenizer.ts';
import { CachedPrefix } from '../model/cached-prefix.ts';
import type { GeneratorMemory, TokenGenerator } from '../model/token-generator.ts';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletionRequestNonStreaming,
  ChatCompletionRequestStreaming,
  ChatCompletions,
  ChoiceLogprobs,
  CompletionUsage,
  Engine,
  EngineEvent,
  EngineStats,
  FinishReason,
  GenerateOptions,
  LoadOptions,
  LoadProgress,
  LoadResult,
  TokenLogprob,
} from './types.ts';

export interface EngineOptions {
  /** Defaults to WebGPU in this thread with files from the model store. */
  backend?: EngineBackend;
}

/** The engine running in this thread (in a page, a worker, or Node). */
export function createEngine(options: EngineOptions = {}): Engine {
  return new LocalEngine(options.backend ?? lazyWebGpuBackend());
}

function lazyWebGpuBackend(): EngineBackend {
  const load = () => import('./webgpu-backend.ts').then((m) => m.webGpuBackend);
  return {
    fetchFiles: async (source, o) => (await load()).fetchFiles(source, o),
    createGenerator: async (files, o) => (await load()).createGenerator(files, o),
  };
}

/** How many times the engine tries to re-create a lost device's model before it gives up (engine events). */
export const RECOVERY_ATTEMPTS = 3;

/** What createGenerator was called with at load: a recovery calls it again with the same (same plan). */
type GeneratorOptions = Parameters<EngineBackend['createGenerator']>[1];

interface LoadedModel {
  source: string;
  /** The model's local files (the store's IndexedDB copy in browsers): a recovery reloads from them, not the network. */
  files: ModelFiles;
  generatorOptions: GeneratorOptions;
  tokenizer: TextTokenizer;
  template: ChatTemplate | null;
  generator: TokenGenerator;
  /** The token ids in the generator's KV cache (what the next prompt may extend). */
  prefix: CachedPrefix;
  /** Tokens that end an answer: config, generation_config and tokenizer eos tokens. */
  stopIds: ReadonlySet<number>;
  /** ChatML's end of turn (`<|im_end|>`) when the vocabulary has it: also ends a chat answer. */
  turnEndId: number | undefined;
}

/** What the generation loop yields: new text, and the logprobs of the tokens sampled since the last piece (when asked for). */
interface Piece {
  text: string;
  logprobs: TokenLogprob[];
}

/** What one run of the generation loop reports when it ends (with the logprobs no piece carried). */
interface RunResult {
  finish: FinishReason;
  usage: CompletionUsage;
  logprobs: TokenLogprob[];
}

/** Every GPU byte a loaded model holds. */
function memoryTotal(m: GeneratorMemory): number {
  return m.weightBytes + m.transientBytes + m.kvCacheBytes + m.activationBytes;
}

/** A failed load's error; when memory was short and a model stays loaded, the message says so. */
function keptModelError(e: unknown, kept: string | undefined): unknown {
  if (kept === undefined || !(isDf11Error(e, 'out-of-memory') || isDf11Error(e, 'model-too-large'))) return e;
  return new Df11Error(e.code, `${e.message} (${kept} stays loaded and answering; unload it to make room for this model)`, { cause: e });
}

class LocalEngine implements Engine {
  readonly chat: { readonly completions: ChatCompletions };
  private model: LoadedModel | null = null;
  private last: EngineStats['last'] = null;
  /** Requests run one at a time; this is the tail of the queue. */
  private queue: Promise<void> = Promise.resolve();
  /** The turn of the request running now (settled when none runs). */
  private active: Promise<void> = Promise.resolve();
  /** A recovery from device loss under way: queued requests wait for it, ahead of their turn's work. */
  private recovering: Promise<void> | null = null;
  /** Set when recovery gave up: every request fails with it until the next load (or unload). */
  private broken: Df11Error | null = null;
  private readonly listeners = new Set<(event: EngineEvent) => void>();

  constructor(private readonly backend: EngineBackend) {
    const create = ((request: ChatCompletionRequest) => this.createChatCompletion(request)) as ChatCompletions['create'];
    this.chat = { completions: { create } };
  }

  async load(source: string, options: LoadOptions = {}): Promise<LoadResult> {
    const { onProgress, signal, accessToken, ...rest } = options;
    return this.exclusive(async () => {
      // The new model loads beside the one loaded now, which keeps answering until the swap: a failed load
      // leaves it in place. Without an explicit budget, the new model gets what the old one leaves over.
      const previous = this.model;
      const reservedBytes = previous && rest.budget === undefined ? memoryTotal(previous.generator.memory()) : 0;
      let generator: TokenGenerator | undefined;
      let loaded: LoadedModel;
      try {
        const files = await this.backend.fetchFiles(source, { onProgress, signal, accessToken });
        throwIfAborted(signal);
        const tokenizer = await TextTokenizer.fromFiles(files);
        const template = await ChatTemplate.fromFiles(files, tokenizer);
        const generatorOptions: GeneratorOptions = { ...rest, reservedBytes };
        generator = await this.backend.createGenerator(files, { ...generatorOptions, onProgress, signal });
        const stopIds = await stopTokenIds(files, generator, tokenizer);
        loaded = {
          source, files, generatorOptions, tokenizer, template, generator,
          prefix: new CachedPrefix(generator), stopIds, turnEndId: tokenizer.tokenId('<|im_end|>'),
        };
      } catch (e) {
        generator?.dispose();
        throw keptModelError(e, previous?.source);
      }
      this.release();
      this.install(loaded);
      onProgress?.({ phase: 'ready', loaded: 1, total: 1 });
      return { model: source, contextLength: generator.contextLength, memory: generator.memory() };
    });
  }

  async unload(): Promise<void> {
    await this.exclusive(async () => this.release());
  }

  onEvent(listener: (event: EngineEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: EngineEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  /** Make `model` the loaded one and watch its device: a loss starts a recovery at once. */
  private install(model: LoadedModel): void {
    this.model = model;
    this.broken = null;
    void model.generator.lost?.then((error) => {
      if (this.model !== model) return;
      const recovery: Promise<void> = this.recover(model, error).finally(() => {
        if (this.recovering === recovery) this.recovering = null;
      });
      this.recovering = recovery;
    });
  }

  /**
   * After a device loss: once the request in flight has failed (with device-lost), re-create the generator
   * from the model's local files with the options of its load (a lost device is replaced by the backend:
   * gpu-generator.ts), feed it the token ids the lost KV cache held, and swap it in. Requests queued
   * meanwhile wait and then run on it. RECOVERY_ATTEMPTS failures in a row leave the engine `broken`.
   */
  private async recover(model: LoadedModel, error: Df11Error): Promise<void> {
    this.emit({ type: 'device-lost', model: model.source, message: error.message });
    await this.active;
    const tokens = model.prefix.tokens.slice();
    let failure: unknown = error;
    for (let attempt = 1; attempt <= RECOVERY_ATTEMPTS; attempt++) {
      if (this.model !== model) return; // unloaded or replaced meanwhile
      let generator: TokenGenerator | undefined;
      try {
        generator = await this.backend.createGenerator(model.files, model.generatorOptions);
        const prefix = new CachedPrefix(generator);
        if (tokens.length > 0) await prefix.feed(tokens);
        if (this.model !== model) {
          generator.dispose();
          return;
        }
        model.generator.dispose();
        this.install({ ...model, generator, prefix });
        this.emit({ type: 'recovered', model: model.source, attempts: attempt, restoredTokens: tokens.length });
        return;
      } catch (e) {
        generator?.dispose();
        failure = e;
      }
    }
    if (this.model !== model) return;
    this.release();
    const reason = failure instanceof Error ? failure.message : String(failure);
    this.broken = new Df11Error(
      'device-lost',
      `the GPU device was lost and ${RECOVERY_ATTEMPTS} attempts to load ${model.source} again failed (${reason}); load a model to go on`,
      { cause: failure },
    );
    this.emit({ type: 'recovery-failed', model: model.source, attempts: RECOVERY_ATTEMPTS, error: this.broken.toJSON() });
  }

  async stats(): Promise<EngineStats> {
    const m = this.model;
    const memory = m ? m.generator.memory() : null;
    return {
      model: m?.source ?? null,
      contextLength: m?.generator.contextLength ?? 0,
      position: m?.generator.position ?? 0,
      memory,
      df11: memory
        ? { bf16Bytes: memory.bf16WeightBytes, storedBytes: memory.weightBytes, ratio: memory.weightBytes / memory.bf16WeightBytes }
        : null,
      last: this.last,
    };
  }

  generate(prompt: string, options: GenerateOptions = {}): AsyncIterable<string> {
    const self = this;
    return (async function* () {
      for await (const piece of self.run(() => self.requireModel().tokenizer.encode(prompt), options)) yield piece.text;
    })();
  }

  private async createChatCompletion(request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    const { generator } = this.requireModel();
    const { topLogprobs } = validateChatRequest(request);
    // validate the sampling options before anything runs
    new Sampler(request, generator.spec.vocabSize);
    maxCompletionTokens(request);
    return request.stream ? this.chatStream(request, topLogprobs) : this.chatOnce(request, topLogprobs);
  }

  private async chatOnce(request: ChatCompletionRequestNonStreaming, topLogprobs: number | null): Promise<ChatCompletion> {
    const run = this.run(() => this.chatPromptIds(request), request, true, topLogprobs);
    let content = '';
    const logprobs: TokenLogprob[] = [];
    let step = await run.next();
    for (; !step.done; step = await run.next()) {
      content += step.value.text;
      logprobs.push(...step.value.logprobs);
    }
    const { finish, usage } = step.value;
    logprobs.push(...step.value.logprobs);
    return {
      id: completionId(),
      object: 'chat.completion',
      created: nowSeconds(),
      model: this.model?.source ?? '',
      choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: choiceLogprobs(topLogprobs, logprobs), finish_reason: finish }],
      usage,
    };
  }

  private chatStream(request: ChatCompletionRequestStreaming, topLogprobs: number | null): AsyncIterable<ChatCompletionChunk> {
    const self = this;
    const id = completionId();
    const created = nowSeconds();
    const model = this.model?.source ?? '';
    const chunk = (c: Pick<ChatCompletionChunk, 'choices' | 'usage'>): ChatCompletionChunk => ({
      id, object: 'chat.completion.chunk', created, model, ...c,
    });
    return (async function* () {
      const run = self.run(() => self.chatPromptIds(request), request, true, topLogprobs);
      try {
        let first = true;
        let step = await run.next();
        for (; !step.done; step = await run.next()) {
          const delta = first ? { role: 'assistant' as const, content: step.value.text } : { content: step.value.text };
          first = false;
          const logprobs = choiceLogprobs(topLogprobs, step.value.logprobs);
          yield chunk({ choices: [{ index: 0, delta, logprobs, finish_reason: null }] });
        }
        const logprobs = choiceLogprobs(topLogprobs, step.value.logprobs);
        yield chunk({ choices: [{ index: 0, delta: {}, logprobs, finish_reason: step.value.finish }] });
        yield chunk({ choices: [], usage: step.value.usage });
      } finally {
        await run.return(undefined as never); // a consumer that stops early still ends the run (and its turn)
      }
    })();
  }

  private chatPromptIds(request: ChatCompletionRequestNonStreaming | ChatCompletionRequestStreaming): number[] {
    const { template, tokenizer } = this.requireModel();
    if (!template) throw new Df11Error('bad-request', 'this model has no chat template; use generate() with a raw prompt');
    return tokenizer.encode(template.render(request.messages, true));
  }

  /**
   * The generation loop: waits its turn, tokenises, feeds the prompt (reusing the KV cache when the
   * prompt extends what it holds), then samples, detokenises and cuts at stop tokens/strings.
   * Yields text pieces; returns the finish reason and token counts. A chat answer also ends at the end of turn.
   * `topLogprobs` (null = off): logprobs of each sampled token with that many alternatives ride on the pieces.
   */
  private async *run(promptIds: () => number[], options: GenerateOptions, chat = false, topLogprobs: number | null = null): AsyncGenerator<Piece, RunResult> {
    const release = await this.acquire();
    let failure: unknown;
    try {
      const { signal } = options;
      throwIfAborted(signal);
      const { generator, prefix, tokenizer, stopIds, turnEndId } = this.requireModel();
      const prompt = promptIds();
      const sampler = new Sampler(options, generator.spec.vocabSize);
      const stops = new StopStringMatcher(normalizeStops(options.stop));
      const detokenizer = new StreamingDetokenizer(tokenizer);
      const maxTokens = maxCompletionTokens(options);
      const tokenText = (id: number) => tokenizer.decode([id]);
      let logprobs: TokenLogprob[] = [];
      if (prompt.length === 0) throw new Df11Error('bad-request', 'the prompt is empty');
      if (prompt.length > generator.contextLength) {
        throw new Df11Error('context-overflow', `the prompt has ${prompt.length} tokens; the context holds ${generator.contextLength}`);
      }

      const t0 = performance.now();
      const fed = await prefix.feed(prompt, signal);
      let logits = fed.logits;
      const t1 = performance.now();

      let completion = 0;
      let finish: FinishReason = 'length';
      /** Time the consumer held the stream (between a yield and the next pull): not decode time. */
      let consumerMs = 0;
      const emit = function* (text: string) {
        const paused = performance.now();
        yield { text, logprobs };
        logprobs = [];
        consumerMs += performance.now() - paused;
      };
      // bounded by maxTokens and by the context length
      for (;;) {
        throwIfAborted(signal);
        const id = sampler.sample(logits, prefix.tokens);
        if (stopIds.has(id) || (chat && id === turnEndId)) {
          finish = 'stop';
          break;
        }
        completion++;
        if (topLogprobs !== null) logprobs.push(tokenLogprob(logits, id, topLogprobs, tokenText));
        const text = stops.push(detokenizer.push(id));
        if (text) yield* emit(text);
        if (stops.done) {
          finish = 'stop';
          break;
        }
        if (completion >= maxTokens || prefix.tokens.length >= generator.contextLength) break;
        logits = await prefix.decode(id, signal);
      }
      const t2 = performance.now();
      const rest = stops.done ? '' : stops.push(detokenizer.flush()) + stops.flush();
      if (rest) yield* emit(rest);

      const decodeSteps = Math.max(completion - 1, 0);
      this.last = {
        promptTokens: prompt.length,
        prefillTokens: fed.fed,
        completionTokens: completion,
        prefillTokensPerSecond: fed.fed / Math.max((t1 - t0) / 1000, 1e-9),
        decodeTokensPerSecond: decodeSteps / Math.max((t2 - t1 - consumerMs) / 1000, 1e-9),
      };
      return {
        finish,
        usage: { prompt_tokens: prompt.length, completion_tokens: completion, total_tokens: prompt.length + completion },
        logprobs,
      };
    } catch (e) {
      failure = isDf11Error(e) ? e : new Df11Error(options.signal?.aborted ? 'aborted' : 'internal', String(e), { cause: e });
      throw failure;
    } finally {
      // after a device loss the cache's ids are what the recovery restores: keep them
      if (!isDf11Error(failure, 'device-lost')) this.model?.prefix.sync();
      release();
    }
  }

  private requireModel(): LoadedModel {
    if (this.broken) throw this.broken;
    if (!this.model) throw new Df11Error('not-loaded', 'no model is loaded; call load() first');
    return this.model;
  }

  private release(): void {
    this.model?.generator.dispose();
    this.model = null;
    this.broken = null;
    this.last = null;
  }

  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** Wait for the requests ahead (and a recovery under way); the returned function lets the next one run. */
  private async acquire(): Promise<() => void> {
    let release!: () => void;
    const turn = new Promise<void>((resolve) => (release = resolve));
    const ahead = this.queue;
    this.queue = ahead.then(() => turn);
    await ahead;
    // bounded: a recovery ends after at most RECOVERY_ATTEMPTS loads (a loss during one is one failure);
    // `active` is set after the wait, so a recovery never waits for a request that waits for it
    while (this.recovering) await this.recovering;
    this.active = turn;
    return release;
  }
}

async function stopTokenIds(files: ModelFiles, generator: TokenGenerator, tokenizer: TextTokenizer): Promise<Set<number>> {
  const ids = new Set(generator.spec.eosTokenIds);
  if ((await files.list()).includes('generation_config.json')) {
    const eos = (await readJson<{ eos_token_id?: number | number[] }>(files, 'generation_config.json')).eos_token_id;
    for (const id of [eos ?? []].flat()) ids.add(id);
  }
  const eosToken = tokenizer.specialToken('eos_token');
  const eosId = eosToken === undefined ? undefined : tokenizer.tokenId(eosToken);
  if (eosId !== undefined) ids.add(eosId);
  return ids;
}

/** `choices[i].logprobs` of a response or chunk: null when the request did not ask for logprobs. */
function choiceLogprobs(topLogprobs: number | null, content: TokenLogprob[]): ChoiceLogprobs | null {
  return topLogprobs === null ? null : { content };
}

function normalizeStops(stop: string | string[] | undefined): string[] {
  return [stop ?? []].flat().filter((s) => s.length > 0);
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new Df11Error('aborted', 'the request was aborted');
}

function completionId(): string {
  return `chatcmpl-${Math.random().toString(36).slice(2, 12)}`;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
