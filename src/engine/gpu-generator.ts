/** Turns model files into the GPU TokenGenerator: plans memory, then loads weights and the forward. */
import { Df11Error } from '../errors.ts';
import type { ModelFiles } from '../format/byte-source.ts';
import { openModel } from '../format/model-reader.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { createGenerator, defaultWeightMode } from '../model/generator.ts';
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
    const plan = planMemory(model.spec, { mode, budgetBytes: options.budget, maxStorageBindingBytes: g.maxBindingSize });
    if (plan.maxContext < 1) {
      throw new Df11Error('model-too-large', `${files.location} needs more GPU memory than the budget of ${plan.budgetBytes} bytes`);
    }
    const contextLength = Math.min(options.contextLength ?? plan.maxContext, plan.maxContext);
    if (options.signal?.aborted) throw new Df11Error('aborted', 'loading was aborted');
    options.onProgress?.({ phase: 'upload', loaded: 0, total: 0 });
    return createGenerator(g, model, { mode, contextLength });
  };
}
