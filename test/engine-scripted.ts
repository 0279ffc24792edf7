/** Test double for the engine tests: a scripted CPU TokenGenerator and a backend serving it. */
import { readFileSync } from 'node:fs';
import type { EngineBackend } from '../src/engine/backend.ts';
import type { TokenGenerator } from '../src/model/token-generator.ts';
import { Df11Error } from '../src/errors.ts';
import { specFromConfig } from '../src/format/config.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import { readTextRefs } from '../src/testing/model-reference.ts';

export const refs = readTextRefs('models/stories-15m');
/** The chat messages of the reference prompt that stories-15m's chat template turns into its third ref. */
export const maxMessage = [{ role: 'user' as const, content: 'Tell me a story about Max.' }];
const spec = specFromConfig(JSON.parse(readFileSync('models/stories-15m/config.json', 'utf8')));
const VOCAB = spec.vocabSize;

/**
 * Test double for the GPU forward: the "model" continues each reference prompt with its greedy ids,
 * and anything else with a token derived from a hash of the context (never a stop token). Logits are
 * a fixed ramp with the chosen token on top, so filters and penalties see a realistic spread.
 */
export class ScriptedGenerator implements TokenGenerator {
  readonly spec = spec;
  readonly fed: number[][] = [];
  private ids: number[] = [];
  disposed = false;
  /**
   * Called at every forward step with the number of calls fed so far (this one included) and the call's
   * signal: tests advance a fake clock here, or hold a step (a returned promise) until they release it.
   */
  onStep: ((fedCalls: number, signal: AbortSignal | undefined) => void | Promise<void>) | undefined;
  constructor(readonly contextLength: number) {}
  get position() {
    return this.ids.length;
  }
  async prefill(ids: ArrayLike<number>, signal?: AbortSignal) {
    const list = Array.from(ids);
    if (this.ids.length + list.length > this.contextLength) throw new Df11Error('context-overflow', 'full');
    this.fed.push(list);
    await this.step(signal);
    this.ids.push(...list);
    return this.logits();
  }
  async decode(id: number, signal?: AbortSignal) {
    return this.prefill([id], signal);
  }
  reset() {
    this.ids = [];
  }
  memory() {
    return { weightMode: 'df11' as const, weightBytes: 700, bf16WeightBytes: 1000, transientBytes: 10, kvCacheBytes: 20, activationBytes: 5, resident: { layers: 0, totalLayers: 2, head: false } };
  }
  dispose() {
    this.disposed = true;
  }
  private async step(signal?: AbortSignal) {
    await this.onStep?.(this.fed.length, signal);
    if (signal?.aborted) throw new Df11Error('aborted', 'aborted in the forward');
  }
  private next(): number {
    for (const ref of refs) {
      const n = ref.input_ids.length;
      const k = this.ids.length - n;
      if (k >= 0 && k < ref.greedy_ids.length && ref.input_ids.every((t, i) => this.ids[i] === t) &&
          ref.greedy_ids.slice(0, k).every((t, i) => this.ids[n + i] === t)) return ref.greedy_ids[k];
    }
    let h = 17;
    for (const id of this.ids) h = (h * 31 + id) % 1_000_003;
    return 3 + (h % (VOCAB - 3));
  }
  private logits() {
    const out = new Float32Array(VOCAB).map((_, i) => -((i * 7919) % 97) / 10);
    out[this.next()] = 5;
    return out;
  }
}

/** Resolves once `signal` aborts (a step held this way ends only through the abort reaching the generator). */
export function untilAborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) resolve();
    else signal?.addEventListener('abort', () => resolve(), { once: true });
  });
}

export function scriptedBackend(contextLength = 256) {
  const generators: ScriptedGenerator[] = [];
  const backend: EngineBackend = {
    fetchFiles: async (source, { onProgress }) => {
      onProgress?.({ phase: 'download', loaded: 1, total: 1, file: 'config.json' });
      return directoryFiles(source);
    },
    createGenerator: async () => {
      const g = new ScriptedGenerator(contextLength);
      generators.push(g);
      return g;
    },
  };
  return { backend, generators };
}
