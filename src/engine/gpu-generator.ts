/** The engine's generators on the GPU: one shared device, each load through openGenerator. */
import { Df11Error } from '../errors.ts';
import type { ModelFiles } from '../format/byte-source.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { defaultBudgetBytes, environmentHints } from '../model/budget.ts';
import { openGenerator } from '../model/open-generator.ts';
import type { TokenGenerator } from '../model/token-generator.ts';
import type { EngineBackend } from './backend.ts';

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
    const onProgress = options.onProgress;
    onProgress?.({ phase: 'upload', loaded: 0, total: 0 });
    // DF11-resident on GPUs; on CPU adapters (SwiftShader) per-layer decoding is slow, so BF16 at load
    const budget = options.budget ?? defaultBudgetBytes(g.limits, environmentHints()) - (options.reservedBytes ?? 0);
    if (budget <= 0) throw new Df11Error('model-too-large', 'the loaded model takes the whole default GPU budget');
    return openGenerator(g, files, {
      mode: options.mode,
      budget,
      contextLength: options.contextLength,
      kvCache: options.kvCache,
      residentLayers: options.residentLayers,
      signal: options.signal,
      onPlan: (plan) => options.onProgress?.({ phase: 'upload', loaded: 0, total: 0, plan: { contextLength: plan.maxContext, resident: plan.resident } }),
      onLoadStep: onProgress && ((phase, loaded, total, file) => onProgress({ phase, loaded, total, ...(file === undefined ? {} : { file }) })),
    });
  };
}
