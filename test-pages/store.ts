/**
 * Harness for e2e/store.spec.ts: the model store API on `window.df11Store`, plus a few helpers that
 * return plain data (progress events, typed errors as { code, message }, SHA-256 of stored files).
 */
import { isDf11Error } from '../src/errors.ts';
import type { ModelFiles } from '../src/format/byte-source.ts';
import { openModel } from '../src/format/model-reader.ts';
import { Df11Decoder } from '../src/gpu/df11-decode.ts';
import { Gpu } from '../src/gpu/gpu.ts';
import { browserShaders } from '../src/gpu/shaders-browser.ts';
import { DEFAULT_CHUNK_BYTES, openModelStore, type DownloadProgress, type FetchModelOptions } from '../src/store/model-store.ts';
import { Records } from '../src/store/records.ts';
import { tapReads } from '../src/testing/tap-reads.ts';

export interface DownloadReport {
  events: DownloadProgress[];
  files: string[];
  error: { code: string; message: string } | null;
}

const store = openModelStore();
/** Progress of the download in flight, for a spec that closes the tab part-way. */
let latest: DownloadProgress | null = null;

async function download(url: string, options: Omit<FetchModelOptions, 'onProgress' | 'signal'> = {}): Promise<DownloadReport> {
  const events: DownloadProgress[] = [];
  try {
    const files = await store.fetchModel(url, {
      ...options,
      onProgress: (p) => {
        latest = p;
        events.push(p);
      },
    });
    return { events, files: await files.list(), error: null };
  } catch (e) {
    if (!isDf11Error(e)) throw e;
    return { events, files: [], error: { code: e.code, message: e.message } };
  }
}

/** SHA-256 (hex) of every stored file, read back through the store's ByteSource in one range. */
async function digests(id: string): Promise<Record<string, string>> {
  const files = await store.open(id);
  const out: Record<string, string> = {};
  for (const name of await files.list()) {
    const source = await files.open(name);
    const bytes = await source.read(0, source.size);
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
    out[name] = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  }
  return out;
}

/** Flips one byte of a stored chunk record, as disk corruption would. */
async function corruptChunk(id: string, file: string, index: number): Promise<void> {
  const records = Records.open();
  const record = await records.getChunk(id, file, index);
  if (!record) throw new Error(`no chunk ${index} of ${file}`);
  const data = new Uint8Array(record.data.slice(0));
  data[Math.floor(data.length / 2)] ^= 0x5a;
  await records.putChunk(id, file, index, { ...record, data: data.buffer });
}

/** Makes every IndexedDB put after the first `n` throw QuotaExceededError, as a full disk does; returns an undo. */
function failWritesAfter(n: number): void {
  const put = IDBObjectStore.prototype.put;
  let writes = 0;
  IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['put']>) {
    if (++writes > n) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    return put.apply(this, args);
  };
  restoreWrites = () => {
    IDBObjectStore.prototype.put = put;
  };
}
let restoreWrites = (): void => undefined;

/** Counts every buffer a read returns as held by the caller (the store's meter counts its own reads). */
function callerHeld(files: ModelFiles): ModelFiles {
  const meter = store.meter;
  return tapReads(files, (bytes) => meter.hold(bytes.buffer.byteLength));
}

/**
 * Uploads every DF11 unit of a stored model to the GPU straight from IndexedDB, one unit at a time, and
 * reports the peak bytes held in JS (store readers + the unit being uploaded).
 */
async function uploadUnits(id: string): Promise<{ units: number; largestUnit: number; peak: number; chunkBytes: number }> {
  const meter = store.meter;
  const weights = await openModel(callerHeld(await store.open(id)));
  meter.release(meter.held); // headers read while opening
  const gpu = await Gpu.create({ shaders: browserShaders });
  const decoder = await Df11Decoder.create(gpu);
  let largestUnit = 0;
  let peak = 0;
  try {
    for (const name of weights.unitNames) {
      meter.resetPeak();
      const unit = await weights.readUnit(name);
      const resident = await decoder.upload(unit);
      const unitBytes = meter.held; // the unit's arrays, held until uploaded
      meter.release(unitBytes);
      resident.destroy();
      largestUnit = Math.max(largestUnit, unitBytes);
      peak = Math.max(peak, meter.peak);
    }
  } finally {
    gpu.destroy();
  }
  return { units: weights.unitNames.length, largestUnit, peak, chunkBytes: DEFAULT_CHUNK_BYTES };
}

const api = {
  uploadUnits,
  store,
  download,
  digests,
  corruptChunk,
  failWritesAfter,
  restoreWrites: () => restoreWrites(),
  latest: () => latest,
};

declare global {
  interface Window {
    df11Store: typeof api;
  }
}

window.df11Store = api;
const state = document.getElementById('state')!;
state.textContent = 'ready';
state.dataset.state = 'ready';
