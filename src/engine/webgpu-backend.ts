/** The engine's default backend: WebGPU in this thread, model files from the store. */
import { Df11Error } from '../errors.ts';
import type { EngineBackend } from './engine.ts';
import { fetchModelFiles } from './model-source.ts';

export const webGpuBackend: EngineBackend = {
  fetchFiles: (source, options) => fetchModelFiles(source, options),
  async createGenerator() {
    throw new Df11Error('internal', 'the GPU forward (src/model/generator.ts) is not wired in yet');
  },
};
