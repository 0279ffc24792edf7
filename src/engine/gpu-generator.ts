/** Turns model files into the GPU TokenGenerator: plans memory, then loads weights and the forward. */
import { Df11Error } from '../errors.ts';
import type { ModelFiles } from '../format/byte-source.ts';
import { openModel } from '../format/model-reader.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { createGenerator, defaultWeightMode } from '../model/generator.ts';
import { defaultKvDtype } from '../model/kv-cache.ts';
import { planMemory } from '../model/planner.ts';
import type { EngineBackend } from './engine.ts';
import type { TokenGenerator } from './token-generator.ts';

/**
 * `createGenerator` for an EngineBackend. One device serves every load; a lost device is replaced
 * on the next load.
 */
export function gpuGenerators(createGpu: () => Promise<Gpu>): EngineBackend['createGenerator'] {
  let device: Promise<Gpu> | null = null;
  const gpu = (): Promise<Gpu> => {
    if (!device) {
      const pending = createGpu();
      device = pending;
      pending.then((g) => g.lost.then(() => (device = null)), () => (device = null));
    }
    return device;
  };

  return async (files: ModelFiles, options): Promise<TokenGenerator> => {
    const g = await gpu();
    // DF11-resident on GPUs; on CPU adapters (SwiftShader) per-layer decoding is slow, so BF16 at load
    const mode = options.mode ?? defaultWeightMode(g);
    const model = await openModel(files);
    const kvCache = options.kvCache ?? defaultKvDtype(g);
    const plan = planMemory(model.spec, { mode, budgetBytes: options.budget, maxStorageBindingBytes: g.maxBindingSize, kvCache });
    if (plan.maxContext < 1) {
      throw new Df11Error('model-too-large', `${files.location} needs more GPU memory than the budget of ${plan.budgetBytes} bytes`);
    }
    const contextLength = Math.min(options.contextLength ?? plan.maxContext, plan.maxContext);
    if (options.signal?.aborted) throw new Df11Error('aborted', 'loading was aborted');
    options.onProgress?.({ phase: 'upload', loaded: 0, total: 0 });
    return failOnDeviceLoss(await createGenerator(g, model, { mode, contextLength, kvCache }), g.lost);
  };
}

/**
 * The generator, except that once the device is lost every call fails with that Df11Error('device-lost')
 * at once, instead of with whatever a dead device's buffers do (or a readback that never settles).
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
    prefill: (ids, signal) => guard(() => gen.prefill(ids, signal)),
    decode: (id, signal) => guard(() => gen.decode(id, signal)),
    reset: () => gen.reset(),
    memory: () => gen.memory(),
    dispose: () => gen.dispose(),
  };
}
