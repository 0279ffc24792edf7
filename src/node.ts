// df11-web in Node: the same Engine as the browser, on WebGPU through the `webgpu` package (Dawn, an
// optional peer dependency: `npm install webgpu`) with model directories read from disk.
import { createEngine } from './engine/engine.ts';
import { nodeBackend, type NodeBackendOptions } from './engine/node-backend.ts';
import type { Engine } from './engine/types.ts';
import { browserShaders } from './gpu/shaders-browser.ts';

export * from './index.ts';
export type { NodeBackendOptions } from './engine/node-backend.ts';
export type { Gpu, ShaderSources } from './gpu/gpu.ts';

/** The engine backend for Node with the WGSL shaders bundled into the library build. */
export function createNodeBackend(options: NodeBackendOptions = {}): ReturnType<typeof nodeBackend> {
  return nodeBackend({ shaders: browserShaders, ...options });
}

/** An Engine in this Node process: `load()` takes a model directory path (HF BF16 or DFloat11). */
export function createNodeEngine(options: NodeBackendOptions = {}): Engine {
  return createEngine({ backend: createNodeBackend(options) });
}
