/**
 * The one way from model files to a running generator: open the directory (HF BF16 or DF11), pick the
 * weight mode, plan the memory (the context, then the layers kept resident in BF16: planner.ts), load the
 * weights and the forward from the plan's layout, and fail every call with Df11Error('device-lost') once the device is gone. The engine's
 * backends, the CLI and the tests use it.
 *
 *   const gen = await openGenerator(gpu, directoryFiles('models/stories-15m'), { mode: 'df11', contextLength: 512 });
 *   const logits = await gen.prefill(ids); ... await gen.decode(next);
 */
import { Df11Error } from '../errors.ts';
import type { ModelFiles } from '../format/byte-source.ts';
import { openModel } from '../format/model-reader.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { createGenerator, defaultChunkTokens, defaultWeightMode, type GeneratorOptions } from './generator.ts';
import { defaultKvDtype } from './kv-cache.ts';
import { planMemory, type MemoryPlan } from './planner.ts';
import type { TokenGenerator } from './token-generator.ts';

export interface OpenOptions extends Partial<Omit<GeneratorOptions, 'resident'>> {
  /** GPU bytes the model may use in all (default DEFAULT_BUDGET_BYTES); see planner.ts for how they are spent. */
  budget?: number;
  /**
   * df11 mode: layers kept resident in BF16 (the head too at numLayers), or 'auto' (default): the context
   * first (contextLength, else DEFAULT_CONTEXT), then as many layers resident as the rest of the budget allows.
   */
  residentLayers?: number | 'auto';
  /** Called with the plan (context, residency) before the weights load. */
  onPlan?: (plan: MemoryPlan) => void;
  signal?: AbortSignal;
}

/**
 * Open, plan, load. mode defaults to defaultWeightMode(gpu), kvCache to defaultKvDtype(gpu), chunkTokens to
 * defaultChunkTokens(gpu); the context and the residency are the plan's (contextLength is at most what the
 * budget buys).
 */
export async function openGenerator(gpu: Gpu, files: ModelFiles, options: OpenOptions = {}): Promise<TokenGenerator> {
  const model = await openModel(files);
  const mode = options.mode ?? defaultWeightMode(gpu);
  const kvCache = options.kvCache ?? defaultKvDtype(gpu);
  const chunkTokens = options.chunkTokens ?? defaultChunkTokens(gpu);
  const plan = planMemory(model.spec, {
    mode,
    kvDtype: kvCache,
    budgetBytes: options.budget,
    prefillChunk: chunkTokens,
    maxStorageBindingBytes: gpu.maxBindingSize,
    contextLength: options.contextLength,
    residentLayers: options.residentLayers,
  });
  options.onPlan?.(plan);
  if (options.signal?.aborted) throw new Df11Error('aborted', 'loading was aborted');
  const { budget: _budget, signal: _signal, residentLayers: _resident, onPlan: _onPlan, ...generatorOptions } = options;
  const generator = await createGenerator(gpu, model, {
    ...generatorOptions,
    mode,
    contextLength: plan.maxContext,
    kvCache,
    chunkTokens,
    resident: { layers: plan.resident.layers, head: plan.resident.head },
  });
  return failOnDeviceLoss(generator, gpu.lost);
}

/**
 * The generator, except that once the device is lost every call fails with that Df11Error('device-lost')
 * at once, instead of with whatever a dead device's buffers do (or a readback that never settles); `lost`
 * tells its owner (the engine recovers from it).
 */
export function failOnDeviceLoss(gen: TokenGenerator, lost: Promise<Df11Error>): TokenGenerator {
  let lostError: Df11Error | null = null;
  const rejectOnLoss = lost.then((e) => {
    lostError = e;
    throw e;
  });
  rejectOnLoss.catch(() => undefined); // observed here so an unused race never reports it as unhandled
  const guard = async <T>(work: () => Promise<T>): Promise<T> => {
    if (lostError) throw lostError;
    try {
      return await Promise.race([work(), rejectOnLoss]);
    } catch (e) {
      throw lostError ?? e;
    }
  };
  return {
    get spec() {
      return gen.spec;
    },
    get contextLength() {
      return gen.contextLength;
    },
    get position() {
      return gen.position;
    },
    lost,
    prefill: (ids, signal) => guard(() => gen.prefill(ids, signal)),
    decode: (id, signal) => guard(() => gen.decode(id, signal)),
    reset: () => gen.reset(),
    memory: () => gen.memory(),
    dispose: () => gen.dispose(),
  };
}
