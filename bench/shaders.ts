import type { ShaderSources } from '../src/gpu/gpu.ts';
import { nodeShaders } from '../src/gpu/node.ts';

/** shaders/*.wgsl for benchmarks: read from disk here; bench/build.mjs replaces this module with inlined sources. */
export const benchShaders: ShaderSources = nodeShaders();
