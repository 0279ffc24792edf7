import { resolve } from 'node:path';
import { defineConfig } from 'vite';

/**
 * The GPU benchmark page (bench.html, bench/page.ts) as its own build, added to the app's dist/ after
 * `vite build`: the demo's chunks and its PWA precache stay exactly what they are without it.
 *   npx vite build && npx vite build --config bench/vite.config.ts      # dist/bench.html + dist/bench/
 */
const root = resolve(import.meta.dirname, '..');

export default defineConfig({
  root,
  publicDir: false,
  build: {
    target: 'es2022',
    outDir: resolve(root, 'dist'),
    emptyOutDir: false,
    assetsDir: 'bench',
    rollupOptions: { input: { bench: resolve(root, 'bench.html') } },
  },
});
