/** The engine's default backend: WebGPU in this thread (page or worker), model files from the store. */
import { Gpu } from '../gpu/gpu.ts';
import { browserShaders } from '../gpu/shaders-browser.ts';
import type { EngineBackend } from './backend.ts';
import { gpuGenerators } from './gpu-generator.ts';
import { fetchModelFiles } from './model-source.ts';

export const webGpuBackend: EngineBackend = {
  fetchFiles: (source, options) => fetchModelFiles(source, options),
  createGenerator: gpuGenerators(() => Gpu.create({ shaders: browserShaders })),
};
