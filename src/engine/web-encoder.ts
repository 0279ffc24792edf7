/** The browser's DF11 encoder: one Web Worker per core (navigator.hardwareConcurrency); in-thread where there are no workers. */
import { Df11Error } from '../errors.ts';
import { encoderPool, inThreadEncoder, type EncodeReply, type UnitEncoder } from '../format/unit-encoder.ts';

export function webEncoder(workers = globalThis.navigator?.hardwareConcurrency ?? 1): UnitEncoder {
  if (typeof Worker === 'undefined' || workers <= 1) return inThreadEncoder;
  return encoderPool(Math.min(workers, 256), () => {
    const worker = new Worker(new URL('../worker/encode-worker.ts', import.meta.url), { type: 'module', name: 'df11-encoder' });
    return {
      post: (message, transfer) => worker.postMessage(message, transfer),
      onReply: (listener) => worker.addEventListener('message', (e: MessageEvent<EncodeReply>) => listener(e.data)),
      onFailure: (listener) => worker.addEventListener('error', (e) => listener(new Df11Error('internal', `encoder worker failed: ${e.message}`))),
      terminate: async () => worker.terminate(),
    };
  });
}
