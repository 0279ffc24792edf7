/** The engine backend for Node: model directories on disk, WebGPU through the `webgpu` package (Dawn). */
import type { ModelFiles } from '../format/byte-source.ts';
import { directoryFiles } from '../format/node-files.ts';
import type { Gpu, ShaderSources } from '../gpu/gpu.ts';
import { createNodeGpu } from '../gpu/node.ts';
import type { EngineBackend } from './backend.ts';
import { gpuGenerators } from './gpu-generator.ts';

export interface NodeBackendOptions {
  /** The files of a load() source (default: the source is a directory path). */
  files?: (source: string) => ModelFiles;
  /** Called with each device once it is created (to report the adapter, or destroy it when done). */
  onGpu?: (gpu: Gpu) => void;
  /** The WGSL sources (default: shaders/*.wgsl read from the repository checkout). */
  shaders?: ShaderSources;
}

export function nodeBackend(options: NodeBackendOptions = {}): EngineBackend {
  const files = options.files ?? directoryFiles;
  return {
    fetchFiles: async (source) => files(source),
    createGenerator: gpuGenerators(async () => {
      const gpu = await createNodeGpu(options.shaders ? { shaders: options.shaders } : {});
      options.onGpu?.(gpu);
      return gpu;
    }),
  };
}
