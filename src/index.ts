// df11-web: run Hugging Face LLMs in the browser on WebGPU from DFloat11-compressed weights.
export { createEngine, RECOVERY_ATTEMPTS, type EngineOptions } from './engine/engine.ts';
export type { EngineBackend } from './engine/backend.ts';
export { createWorkerEngine } from './worker/client.ts';
export { adapterBudget, checkFit, type Budget, type FitOptions, type FitReport, type ModeFit } from './engine/fit.ts';
export { defaultBudgetBytes } from './model/budget.ts';
export { exposeEngine } from './worker/expose.ts';
export type { Endpoint } from './worker/protocol.ts';
export type * from './engine/types.ts';
export type { GeneratorMemory, TokenGenerator } from './model/token-generator.ts';
export { Df11Error, deserializeError, isDf11Error, type ErrorCode, type SerializedError } from './errors.ts';
export type { ByteSource, ModelFiles } from './format/byte-source.ts';
export type { Architecture, ModelSpec, RopeSpec } from './format/model-spec.ts';
export {
  openModelStore,
  hfResolveUrl,
  type ModelStore,
  type ModelStoreOptions,
  type FetchModelOptions,
  type StoredModelInfo,
  type EvictedChunks,
} from './store/model-store.ts';
