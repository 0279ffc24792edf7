import type { ShaderSources } from './gpu.ts';

/** shaders/*.wgsl bundled by Vite as text. */
const files = import.meta.glob('../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;

export const browserShaders: ShaderSources = new Map(
  Object.entries(files).map(([path, code]) => [path.replace(/^.*\/(\w+)\.wgsl$/, '$1'), code]),
);
