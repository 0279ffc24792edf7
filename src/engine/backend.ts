import type { ModelFiles } from '../format/byte-source.ts';
import type { TokenGenerator } from '../model/token-generator.ts';
import type { LoadOptions, LoadProgress } from './types.ts';

/** Where the engine gets a model's files and the GPU forward over them; swapped out in tests. */
export interface EngineBackend {
  fetchFiles(source: string, options: { onProgress?: (p: LoadProgress) => void; signal?: AbortSignal }): Promise<ModelFiles>;
  createGenerator(files: ModelFiles, options: Omit<LoadOptions, 'signal'> & { signal?: AbortSignal }): Promise<TokenGenerator>;
}
