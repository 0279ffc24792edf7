#!/usr/bin/env node
// The df11 command: runs the TypeScript CLI through tsx so no build step stands between an edit and a run.
// It lives in a clone of the repository (tsx is a devDependency); the npm package ships the library only.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../src/cli/main.ts', import.meta.url);
if (!existsSync(cli)) {
  console.error('df11: the CLI runs from a clone of the df11-web repository (npm run setup); the npm package ships the library only.');
  process.exit(1);
}
const { register } = await import('tsx/esm/api');
register();
const args = process.argv.slice(2);
// `compress` encodes in worker threads: it runs in a node whose GC does not compete with them (src/cli/single-threaded-gc.ts).
const { rerunWithSingleThreadedGc } = await import(new URL('../src/cli/single-threaded-gc.ts', import.meta.url).href);
const rerun = args[0] === 'compress' ? rerunWithSingleThreadedGc(fileURLToPath(import.meta.url), args) : null;
if (rerun !== null) {
  process.exitCode = rerun;
} else {
  const { main } = await import(cli.href);
  process.exitCode = await main(args);
}
