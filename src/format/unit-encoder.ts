/**
 * Who encodes DF11 units: this thread, or a pool of workers (Web Workers in the browser, worker_threads in
 * Node) speaking one small message protocol. A pool encodes up to `concurrency` units at once; the unit
 * arrays move between threads as transfers, not copies: the encoded unit always, the BF16 input when the
 * caller gives it away (`transfer`, e.g. fresh file reads); otherwise the input is copied when its job is
 * posted, so the main thread never copies units that are still waiting for a worker.
 */
import { deserializeError, Df11Error, type SerializedError } from '../errors.ts';
import { encodeUnit, type MatrixInput } from './df11-encoder.ts';
import type { Df11Unit } from './df11-types.ts';

export interface UnitEncoder {
  /** Units it can encode at once. */
  readonly concurrency: number;
  /**
   * `transfer`: the matrices' buffers are the caller's to give away (each is detached, whole, by a pool);
   * without it a pool copies them, as they may be views into memory the caller keeps.
   */
  encode(unitName: string, matrices: MatrixInput[], options?: { transfer?: boolean }): Promise<Df11Unit>;
  /** Ends the workers (a no-op in-thread). */
  close(): Promise<void>;
}

export const inThreadEncoder: UnitEncoder = {
  concurrency: 1,
  encode: async (name, matrices) => encodeUnit(name, matrices),
  close: async () => undefined,
};

/** Main thread → worker. */
export interface EncodeRequest {
  id: number;
  unitName: string;
  matrices: MatrixInput[];
}

/** Worker → main thread. */
export type EncodeReply = { id: number; unit: Df11Unit } | { id: number; error: SerializedError };

/** What a pool needs of one worker, in either runtime. */
export interface EncodeWorker {
  post(message: EncodeRequest, transfer: ArrayBuffer[]): void;
  /** Registers the reply listener (called once). */
  onReply(listener: (reply: EncodeReply) => void): void;
  /** Registers a listener for the worker failing outside a request (script error, exit). */
  onFailure(listener: (error: Df11Error) => void): void;
  terminate(): Promise<void>;
}

/** The worker side: encodes one request; returns the reply and the buffers to transfer. */
export function handleEncodeRequest(request: EncodeRequest): { reply: EncodeReply; transfer: ArrayBuffer[] } {
  try {
    const unit = encodeUnit(request.unitName, request.matrices);
    const transfer = [unit.encodedExponent, unit.signMantissa, unit.luts, unit.gaps, unit.outputPositions].map((a) => a.buffer as ArrayBuffer);
    return { reply: { id: request.id, unit }, transfer: [...new Set(transfer)] };
  } catch (e) {
    const error = e instanceof Df11Error ? e : new Df11Error('internal', `encoding ${request.unitName}: ${(e as Error)?.message ?? String(e)}`);
    return { reply: { id: request.id, error: error.toJSON() }, transfer: [] };
  }
}

/** A pool of `count` workers made by `spawn`; each takes one unit at a time, the rest wait in order. */
export function encoderPool(count: number, spawn: () => EncodeWorker): UnitEncoder {
  if (!Number.isSafeInteger(count) || count < 1 || count > 256) throw new Df11Error('bad-request', `worker count ${count} must be 1..256`);
  type Job = { request: EncodeRequest; transfer: boolean; resolve: (u: Df11Unit) => void; reject: (e: Df11Error) => void };
  const queue: Job[] = [];
  const idle: EncodeWorker[] = [];
  const busy = new Map<EncodeWorker, Job>();
  let nextId = 0;
  let failure: Df11Error | null = null;

  const pump = (): void => {
    while (idle.length > 0 && queue.length > 0) {
      const worker = idle.pop()!;
      const job = queue.shift()!;
      busy.set(worker, job);
      // Copied only now, at the last moment: the caller's bits may be views into a buffer it keeps.
      const matrices = job.transfer ? job.request.matrices : job.request.matrices.map((m) => ({ ...m, bits: m.bits.slice() }));
      const buffers = new Set(matrices.map((m) => m.bits.buffer as ArrayBuffer));
      worker.post({ ...job.request, matrices }, [...buffers]);
    }
  };
  const workers = Array.from({ length: count }, () => {
    const worker = spawn();
    worker.onReply((reply) => {
      const job = busy.get(worker);
      if (!job || job.request.id !== reply.id) return;
      busy.delete(worker);
      idle.push(worker);
      if ('error' in reply) job.reject(deserializeError(reply.error));
      else job.resolve(reply.unit);
      pump();
    });
    worker.onFailure((error) => {
      failure ??= error;
      busy.get(worker)?.reject(error);
      busy.delete(worker);
      for (const job of queue.splice(0)) job.reject(error);
    });
    idle.push(worker);
    return worker;
  });

  return {
    concurrency: count,
    encode(unitName, matrices, options = {}) {
      if (failure) return Promise.reject(failure);
      return new Promise<Df11Unit>((resolve, reject) => {
        const request = { id: nextId++, unitName, matrices: matrices.map((m) => ({ name: m.name, shape: [...m.shape], bits: m.bits })) };
        queue.push({ request, transfer: options.transfer === true, resolve, reject });
        pump();
      });
    },
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
