import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineConfig } from 'vite';
import { VitePWA } from 'vite-plugin-pwa';

/** Pages built next to the app: index.html plus every test-pages/*.html (harnesses for Playwright). */
const pages: Record<string, string> = { main: resolve(import.meta.dirname, 'index.html') };
for (const f of readdirSync(resolve(import.meta.dirname, 'test-pages'))) {
  if (f.endsWith('.html')) pages[`test-${f.slice(0, -5)}`] = resolve(import.meta.dirname, 'test-pages', f);
}

/**
 * The demo's Content-Security-Policy: scripts, styles and workers from the app's own origin only (no
 * inline script), model files from the app's origin or any https origin. Added to the built index.html
 * (the dev server needs inline styles and a websocket for hot reload).
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "worker-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self' https:",
  "manifest-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
].join('; ');

export default defineConfig({
  build: { target: 'es2022', rollupOptions: { input: pages } },
  worker: { format: 'es' },
  plugins: [
    {
      name: 'df11-csp',
      apply: 'build',
      transformIndexHtml: (html, ctx) =>
        ctx.path === '/index.html' ? html.replace('<head>', `<head>\n    <meta http-equiv="Content-Security-Policy" content="${CSP}" />`) : html,
    },
    // The service worker precaches the app shell only; model weights live in IndexedDB (src/store).
    VitePWA({
      registerType: 'autoUpdate',
      injectRegister: false,
      manifest: {
        name: 'df11-web chat',
        short_name: 'df11 chat',
        description: 'Chat with a language model running in your browser on WebGPU, from DFloat11-compressed weights.',
        theme_color: '#4c1d95',
        background_color: '#f6f5fb',
        display: 'standalone',
        start_url: '.',
        icons: [
          { src: 'icons/icon-192.png', sizes: '192x192', type: 'image/png' },
          { src: 'icons/icon-512.png', sizes: '512x512', type: 'image/png' },
          { src: 'icons/maskable-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
        ],
      },
      workbox: {
        // take over the page on the first visit, so it works offline without a second online load
        clientsClaim: true,
        skipWaiting: true,
        globPatterns: ['**/*.{js,css,html,svg,png,webmanifest}'],
        globIgnores: ['models/**', 'test-pages/**'],
        navigateFallback: 'index.html',
        // bench.html is built into dist/ by bench/vite.config.ts, after this (so never precached)
        navigateFallbackDenylist: [/^\/test-pages\//, /^\/models\//, /^\/bench\.html/],
        // The model list is small and changes with the build: network first, cached copy offline.
        runtimeCaching: [{ urlPattern: /\/models\/index\.json$/, handler: 'NetworkFirst', options: { cacheName: 'model-index' } }],
      },
    }),
  ],
});
