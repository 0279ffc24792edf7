// The engine in a Web Worker: `new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' })`,
// then `createWorkerEngine(worker)` on the page side.
import { createEngine } from '../engine/engine.ts';
import { exposeEngine } from './expose.ts';

exposeEngine(createEngine());
