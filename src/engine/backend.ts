import type { ModelFiles } from '../format/byte-source.ts';
import type { TokenGenerator } from '../model/token-generator.ts';
import type { FetchOptions } from './model-source.ts';
import type { LoadOptions } from './types.ts';

/** Where the engine gets a model's files and the GPU forward over them; swapped out in tests. */
export interface EngineBackend {
  fetchFiles(source: string, options: FetchOptions): Promise<ModelFiles>;
  /** `reservedBytes`: GPU memory another loaded model holds (taken off the default budget). */
  createGenerator(files: ModelFiles, options: Omit<LoadOptions, 'signal'> & { signal?: AbortSignal; reservedBytes?: number }): Promise<TokenGenerator>;
}
