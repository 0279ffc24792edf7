/** The worker_threads pool behind `df11 compress --threads N`: same bytes as one thread, typed errors across threads. */
import { afterAll, describe, expect, it } from 'vitest';
import { nodeEncoder } from '../src/cli/encoder-pool.ts';
import { compressModel } from '../src/format/compress-model.ts';
import { memorySink } from '../src/format/memory-files.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import { codeOf } from '../src/testing/error-code.ts';

const pool = nodeEncoder(2);
afterAll(() => pool.close());

describe('df11 compress --threads 2', () => {
  it('writes the same files, byte for byte, as one thread; progress counts every unit once', async () => {
    const one = new Map<string, Uint8Array>();
    const two = new Map<string, Uint8Array>();
    await compressModel(directoryFiles('models/stories-micro'), memorySink(one));
    const seen: number[] = [];
    const summary = await compressModel(directoryFiles('models/stories-micro'), memorySink(two), { encoder: pool, onUnit: (p) => seen.push(p.index) });
    expect([...two.keys()].sort()).toEqual([...one.keys()].sort());
    for (const [name, data] of one) expect(Buffer.from(two.get(name)!).equals(Buffer.from(data)), name).toBe(true);
    expect(seen.sort((a, b) => a - b)).toEqual(summary.units.map((_, i) => i));
  });

  it('an unencodable weight in a worker is the same typed error, and the pool keeps working', async () => {
    const bits = new Uint16Array(64).fill(0x7f80); // +Inf
    expect(await codeOf(pool.encode('bad', [{ name: 'bad.weight', shape: [64], bits }]))).toBe('unencodable');
    const ok = await pool.encode('ok', [{ name: 'ok.weight', shape: [64], bits: new Uint16Array(64).fill(0x3f80) }]);
    expect(ok.signMantissa.length).toBe(64);
    expect(bits[0]).toBe(0x7f80); // the caller's array was copied, not transferred away
  });

  it('a unit given away (transfer) goes to the worker without a copy: the caller\'s buffer is detached', async () => {
    const bits = new Uint16Array(64).fill(0x3f80);
    const unit = await pool.encode('given', [{ name: 'given.weight', shape: [64], bits }], { transfer: true });
    expect(unit.signMantissa.length).toBe(64);
    expect(bits.buffer.byteLength).toBe(0);
  });
});
