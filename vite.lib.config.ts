import { resolve } from 'node:path';
import { defineConfig } from 'vite';

/**
 * The embeddable library: `vite build --config vite.lib.config.ts` → dist-lib/df11-web.js (Engine API)
 * and dist-lib/df11-worker.js (the worker entry, for `new Worker(url, { type: 'module' })`).
 */
export default defineConfig({
  publicDir: false,
  build: {
    target: 'es2022',
    outDir: 'dist-lib',
    lib: {
      entry: { 'df11-web': resolve(import.meta.dirname, 'src/index.ts'), 'df11-worker': resolve(import.meta.dirname, 'src/worker/worker.ts') },
      formats: ['es'],
    },
  },
  worker: { format: 'es' },
});
