import { resolve } from 'node:path';
import { defineConfig } from 'vite';
import pkg from './package.json' with { type: 'json' };

const src = (f: string) => resolve(import.meta.dirname, 'src', f);
/** Runtime dependencies stay imports (the consumer's bundler resolves them); Node built-ins and Dawn too. */
const external = [...Object.keys(pkg.dependencies), ...Object.keys(pkg.peerDependencies)];

/**
 * The npm library (`npm run build:lib`, run by `prepack`): dist-lib/df11-web.js (Engine API),
 * dist-lib/df11-worker.js (the worker entry: importing it serves an engine to the page) and
 * dist-lib/df11-node.js (Node: Dawn backend, model directories on disk). Declarations: tsconfig.lib.json.
 */
export default defineConfig({
  publicDir: false,
  build: {
    target: 'es2022',
    outDir: 'dist-lib',
    emptyOutDir: false, // tsc writes dist-lib/types next to it
    minify: false,
    lib: {
      entry: { 'df11-web': src('index.ts'), 'df11-worker': src('worker/worker.ts'), 'df11-node': src('node.ts') },
      formats: ['es'],
    },
    rollupOptions: {
      external: (id) => id.startsWith('node:') || external.some((d) => id === d || id.startsWith(`${d}/`)),
    },
  },
  worker: { format: 'es' },
});
