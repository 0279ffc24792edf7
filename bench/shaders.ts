import type { ShaderSources } from '../src/gpu/gpu.ts';
import { nodeShaders } from '../src/gpu/node.ts';

/**
 * shaders/*.wgsl plus the benchmarks' own bench/shaders/*.wgsl (the copy probe, not part of the library):
 * read from disk here; bench/build.mjs replaces this module with inlined sources.
 */
export const benchShaders: ShaderSources = new Map([...nodeShaders(), ...nodeShaders(new URL('./shaders', import.meta.url).pathname)]);
