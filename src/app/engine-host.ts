import { createEngine } from '../engine/engine.ts';
import type { Engine } from '../engine/types.ts';
import { createWorkerEngine } from '../worker/client.ts';

/** An engine and how to get rid of it (a worker is terminated, an in-thread engine unloaded). */
export interface HostedEngine {
  engine: Engine;
  inWorker: boolean;
  dispose(): Promise<void>;
}

export function hostEngine(inWorker: boolean): HostedEngine {
  if (!inWorker) {
    const engine = createEngine();
    return { engine, inWorker, dispose: () => engine.unload() };
  }
  const worker = new Worker(new URL('../worker/worker.ts', import.meta.url), { type: 'module', name: 'df11-engine' });
  const engine = createWorkerEngine(worker);
  return {
    engine,
    inWorker,
    async dispose() {
      await engine.unload().catch(() => undefined);
      worker.terminate();
    },
  };
}
