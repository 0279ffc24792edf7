// Bundle the benchmarks into self-contained .mjs files for a bare GPU machine (see ../shared/gpu/README.md):
//   node bench/build.mjs   ->  dist-bench/decode-bench.mjs, dist-bench/forward-bench.mjs, dist-bench/matmul-bench.mjs,
//   dist-bench/linear-attention-bench.mjs
// `webgpu` stays external (the .gpu bundle provides it); shaders/*.wgsl and bench/shaders/*.wgsl are inlined via
// bench/shaders.ts.
import { build } from 'esbuild';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const shaderDirs = [join(root, 'shaders'), join(root, 'bench/shaders')];

const inlineShaders = {
  name: 'inline-shaders',
  setup(b) {
    b.onLoad({ filter: /bench[\\/]shaders\.ts$/ }, () => {
      const entries = shaderDirs.flatMap((dir) =>
        readdirSync(dir)
          .filter((f) => f.endsWith('.wgsl'))
          .map((f) => [f.slice(0, -5), readFileSync(join(dir, f), 'utf8')]),
      );
      return { contents: `export const benchShaders = new Map(${JSON.stringify(entries)});`, loader: 'js' };
    });
  },
};

await build({
  entryPoints: [
    join(root, 'bench/decode-bench.ts'),
    join(root, 'bench/forward-bench.ts'),
    join(root, 'bench/matmul-bench.ts'),
    join(root, 'bench/linear-attention-bench.ts'),
    join(root, 'bench/overlap-bench.ts'),
  ],
  outdir: join(root, 'dist-bench'),
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['webgpu'],
  plugins: [inlineShaders],
  logLevel: 'info',
});
