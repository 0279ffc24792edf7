import { defineConfig } from 'vitest/config';

/**
 * Files kept out of the parallel run: the fuzz suite's runner self-test gives a child process 5 s for its
 * first df11 case and the CI slice runs its own two worker processes, so it runs alone as before.
 */
const SERIAL = ['test/fuzz.test.ts'];

// Unit and GPU tests run in Node. GPU tests use the `webgpu` package (Dawn) on SwiftShader here.
export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'parallel',
          include: ['test/**/*.test.ts'],
          exclude: SERIAL,
          // Two files at a time, GPU files too, also on 2 cores: a SwiftShader file leaves a core idle while
          // Dawn compiles its pipelines (one at a time) or the test computes its reference, and since
          // src/gpu/node.ts stopped Dawn's polling busy loop a second file fills it (5 GPU files: 93 s one at
          // a time, 50 s two at a time; a third worker gained nothing).
          fileParallelism: true,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: 'serial', include: SERIAL, fileParallelism: false, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
