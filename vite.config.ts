import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineConfig } from 'vite';

/** Pages built next to the app: index.html plus every test-pages/*.html (harnesses for Playwright). */
const pages: Record<string, string> = { main: resolve(__dirname, 'index.html') };
for (const f of readdirSync(resolve(__dirname, 'test-pages'))) {
  if (f.endsWith('.html')) pages[`test-${f.slice(0, -5)}`] = resolve(__dirname, 'test-pages', f);
}

export default defineConfig({
  build: { target: 'es2022', rollupOptions: { input: pages } },
  worker: { format: 'es' },
});
