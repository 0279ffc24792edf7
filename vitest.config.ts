import { defineConfig } from 'vitest/config';

// Unit and GPU tests run in Node. GPU tests use the `webgpu` package (Dawn) on SwiftShader here.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // SwiftShader is CPU-bound; running GPU files in parallel on 2 cores only slows each down.
    fileParallelism: false,
    pool: 'forks',
  },
});
