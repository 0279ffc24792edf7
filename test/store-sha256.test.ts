// Incremental SHA-256 against node:crypto on random data of awkward sizes, split at random points,
// and resumed from a saved state as the store does across sessions.
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Sha256, toHex } from '../src/store/sha256.ts';

const reference = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

describe('Sha256', () => {
  it('matches node:crypto for every length around the padding boundaries', () => {
    for (let n = 0; n <= 200; n++) {
      const data = randomBytes(n);
      expect(toHex(new Sha256().update(data).digest())).toBe(reference(data));
    }
  });

  it('gives the same digest however the input is split', () => {
    const data = randomBytes(100_003);
    for (let trial = 0; trial < 20; trial++) {
      const hasher = new Sha256();
      let offset = 0;
      for (let guard = 0; offset < data.length && guard < 10_000; guard++) {
        const take = Math.floor(Math.random() * 5000);
        hasher.update(data.subarray(offset, offset + take));
        offset += take;
      }
      expect(toHex(hasher.digest())).toBe(reference(data));
    }
  });

  it('resumes from a saved state on a 64-byte boundary, and refuses elsewhere', () => {
    const data = randomBytes(64 * 1000 + 17);
    const split = 64 * 377;
    const first = new Sha256().update(data.subarray(0, split));
    const state = JSON.parse(JSON.stringify(first.state()));
    expect(toHex(new Sha256(state).update(data.subarray(split)).digest())).toBe(reference(data));
    expect(() => new Sha256().update(data.subarray(0, 65)).state()).toThrow(RangeError);
    // digest() does not disturb the running hash.
    first.digest();
    expect(toHex(first.update(data.subarray(split)).digest())).toBe(reference(data));
  });
});
