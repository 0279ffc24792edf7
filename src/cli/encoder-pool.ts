/** `threads` worker_threads encoding DF11 units in parallel (df11 compress --threads N). */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Df11Error } from '../errors.ts';
import { encoderPool, inThreadEncoder, type EncodeReply, type UnitEncoder } from '../format/unit-encoder.ts';

/** One thread per core by default; 1 encodes in this thread (no worker). */
export function nodeEncoder(threads = availableParallelism()): UnitEncoder {
  if (threads === 1) return inThreadEncoder;
  return encoderPool(threads, () => {
    const worker = new Worker(new URL('./encode-worker-boot.mjs', import.meta.url));
    return {
      post: (message, transfer) => worker.postMessage(message, transfer),
      onReply: (listener) => worker.on('message', (reply: EncodeReply) => listener(reply)),
      onFailure: (listener) => {
        worker.on('error', (e) => listener(new Df11Error('internal', `encoder thread failed: ${e.message}`, { cause: e })));
        worker.on('exit', (code) => {
          if (code !== 0) listener(new Df11Error('internal', `encoder thread exited with code ${code}`));
        });
      },
      terminate: async () => {
        worker.removeAllListeners('exit');
        await worker.terminate();
      },
    };
  });
}
