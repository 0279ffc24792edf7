#!/usr/bin/env node
// The df11 command: runs the TypeScript CLI through tsx so no build step stands between an edit and a run.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
