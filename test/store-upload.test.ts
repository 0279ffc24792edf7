// GPU upload straight from IndexedDB, unit by unit: the JS heap never holds more than the unit being
// uploaded plus one chunk. The store's ReadMeter counts the bytes its readers hold (outputs being
// assembled, chunks loaded); this test adds what the caller holds (the unit's arrays until uploaded).
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFaultServer, type FaultServer } from '../e2e/server/fault-server.ts';
import type { ModelFiles } from '../src/format/byte-source.ts';
import { openModel } from '../src/format/model-reader.ts';
import { SafetensorsFile } from '../src/format/safetensors.ts';
import { Df11Decoder, type GpuDf11Unit } from '../src/gpu/df11-decode.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { DEFAULT_CHUNK_BYTES, openModelStore, type ReadMeter } from '../src/store/model-store.ts';
import { tapReads } from '../src/testing/tap-reads.ts';
import { nodeHttpFetch } from './store-node-fetch.ts';

const GENERATED = resolve('public/models/stories-15m-df11');
const ROOT = existsSync(GENERATED) ? GENERATED : resolve('test/fixtures/official-df11/stories-15m');

let server: FaultServer;
beforeAll(async () => {
  globalThis.indexedDB = new IDBFactory();
  server = await startFaultServer(ROOT);
});
afterAll(() => server.close());

/** Counts every returned buffer as held by the caller until the caller releases it. */
function callerHeld(files: ModelFiles, meter: ReadMeter): ModelFiles {
  return tapReads(files, (bytes, begin, end) => {
    // Exactly the bytes asked for: no view that keeps a whole chunk alive.
    expect(bytes.buffer.byteLength).toBe(end - begin);
    meter.hold(bytes.byteLength);
  });
}

it('uploads every DF11 unit from IndexedDB with peak JS-held bytes <= largest unit + one chunk', async () => {
  const store = openModelStore({ fetch: nodeHttpFetch().fetch });
  const stored = await store.fetchModel(`${server.origin}/m/stories-15m/`);
  const meter = store.meter;
  const weights = await openModel(callerHeld(stored, meter));
  meter.release(meter.held); // headers and config read while opening are not part of the units
  expect(weights.unitNames.length).toBeGreaterThan(2);

  const gpu = await createNodeGpu();
  const decoder = await Df11Decoder.create(gpu);
  const resident: GpuDf11Unit[] = [];
  let largestUnit = 0;
  let peak = 0;
  let largestFile = 0;
  try {
    for (const name of weights.unitNames) {
      meter.resetPeak();
      const unit = await weights.readUnit(name);
      const unitBytes = [unit.encodedExponent, unit.signMantissa, unit.luts, unit.gaps, unit.outputPositions].reduce((s, a) => s + a.byteLength, 0) + 8 * unit.splitPositions.length;
      resident.push(await decoder.upload(unit));
      expect(meter.held).toBe(unitBytes); // the caller holds exactly the unit's arrays until it drops them
      meter.release(unitBytes);
      largestUnit = Math.max(largestUnit, unitBytes);
      peak = Math.max(peak, meter.peak);
      const file = `${name.replace(/\./g, '_')}.safetensors`;
      largestFile = Math.max(largestFile, (await stored.open(file)).size);
    }
  } finally {
    for (const u of resident) u.destroy();
    gpu.destroy();
  }
  console.log(`unit upload from IndexedDB: peak ${peak} bytes held, largest unit ${largestUnit}, chunk ${DEFAULT_CHUNK_BYTES}`);
  expect(peak).toBeLessThanOrEqual(largestUnit + DEFAULT_CHUNK_BYTES);
  expect(peak).toBeGreaterThan(largestUnit); // the chunk being copied is counted too
  expect(largestFile).toBeGreaterThan(DEFAULT_CHUNK_BYTES); // units span several chunks, so the bound means something
});

it('reads a safetensors header without loading the rest of the file', async () => {
  const store = openModelStore({ fetch: nodeHttpFetch().fetch });
  const stored = await store.fetchModel(`${server.origin}/m/stories-15m/`);
  const meter = store.meter;
  const before = meter.chunksLoaded;
  meter.resetPeak();
  const file = await SafetensorsFile.open(await stored.open('model_layers_0.safetensors'), 'model_layers_0.safetensors');
  expect(file.tensors.size).toBeGreaterThan(5);
  expect(meter.chunksLoaded - before).toBe(2); // the length prefix, then the header: both in chunk 0
  expect(meter.peak).toBeLessThanOrEqual(DEFAULT_CHUNK_BYTES + 64 * 1024);
});
