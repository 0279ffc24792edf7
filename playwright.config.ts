import { defineConfig } from '@playwright/test';
import chromiumFlags from './e2e/chromium-flags.json' with { type: 'json' };

/**
 * Chromium flags that give headless Debian chromium a WebGPU adapter on SwiftShader (no GPU needed); the
 * list lives in e2e/chromium-flags.json beside the real-GPU one that bench/chromium-run.mjs uses.
 */
export const CHROMIUM_WEBGPU_ARGS: string[] = chromiumFlags.swiftshader;

export default defineConfig({
  testDir: 'e2e',
  outputDir: 'test-results',
  timeout: 180_000,
  workers: 1,
  reporter: [['list']],
  use: {
    headless: true,
    launchOptions: { executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_WEBGPU_ARGS },
    baseURL: 'http://127.0.0.1:4173',
  },
  webServer: {
    command: 'npx vite preview --port 4173 --strictPort --host 127.0.0.1',
    url: 'http://127.0.0.1:4173',
    reuseExistingServer: false,
    timeout: 60_000,
  },
});
