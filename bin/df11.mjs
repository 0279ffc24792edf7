#!/usr/bin/env node
// The df11 command: runs the TypeScript CLI through tsx so no build step stands between an edit and a run.
// It lives in a clone of the repository (tsx is a devDependency); the npm package ships the library only.
import { existsSync } from 'node:fs';

const cli = new URL('../src/cli/main.ts', import.meta.url);
if (!existsSync(cli)) {
  console.error('df11: the CLI runs from a clone of the df11-web repository (npm run setup); the npm package ships the library only.');
  process.exit(1);
}
const { register } = await import('tsx/esm/api');
register();
const { main } = await import(cli.href);
process.exitCode = await main(process.argv.slice(2));
