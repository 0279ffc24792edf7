/**
 * Incremental SHA-256 (FIPS 180-4) whose state can be saved between 64-byte blocks and restored later:
 * `crypto.subtle.digest` only hashes a whole buffer, but a model file arrives in chunks across
 * sessions, and the store keeps the running state in each chunk record so a resumed download
 * continues the file hash without reading the stored prefix again.
 */

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);

const INITIAL = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/** The hash state between blocks: eight words and the number of bytes hashed (a multiple of 64). */
export interface Sha256State {
  h: number[];
  bytes: number;
}

export class Sha256 {
  private readonly h = new Uint32Array(8);
  private readonly w = new Uint32Array(64);
  /** Bytes of an incomplete block waiting for more input.  (64) */
  private readonly pending = new Uint8Array(64);
  private pendingLength = 0;
  private bytes = 0;

  constructor(state?: Sha256State) {
    if (state && (state.h.length !== 8 || state.bytes % 64 !== 0)) {
      throw new RangeError('a SHA-256 state needs 8 words and a byte count that is a multiple of 64');
    }
    this.h.set(state ? state.h : INITIAL);
    this.bytes = state ? state.bytes : 0;
  }

  update(data: Uint8Array): this {
    let offset = 0;
    if (this.pendingLength > 0) {
      const take = Math.min(64 - this.pendingLength, data.length);
      this.pending.set(data.subarray(0, take), this.pendingLength);
      this.pendingLength += take;
      offset = take;
      if (this.pendingLength < 64) return this;
      this.block(this.pending, 0);
      this.pendingLength = 0;
    }
    for (; offset + 64 <= data.length; offset += 64) this.block(data, offset);
    this.pending.set(data.subarray(offset), 0);
    this.pendingLength = data.length - offset;
    return this;
  }

  /** The state to resume from; only defined on a block boundary (total input a multiple of 64 bytes). */
  state(): Sha256State {
    if (this.pendingLength !== 0) throw new RangeError('SHA-256 state is only saved on a 64-byte boundary');
    return { h: Array.from(this.h), bytes: this.bytes };
  }

  /** Finish (pads a copy, so the object stays usable) and return the 32-byte digest. */
  digest(): Uint8Array {
    const copy = new Sha256({ h: Array.from(this.h), bytes: this.bytes });
    const totalBits = (this.bytes + this.pendingLength) * 8;
    const tailLength = this.pendingLength < 56 ? 64 : 128;
    const tail = new Uint8Array(tailLength);
    tail.set(this.pending.subarray(0, this.pendingLength));
    tail[this.pendingLength] = 0x80;
    const view = new DataView(tail.buffer);
    view.setUint32(tailLength - 8, Math.floor(totalBits / 2 ** 32));
    view.setUint32(tailLength - 4, totalBits >>> 0);
    for (let offset = 0; offset < tailLength; offset += 64) copy.block(tail, offset);
    const out = new Uint8Array(32);
    const outView = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) outView.setUint32(i * 4, copy.h[i]);
    return out;
  }

  private block(data: Uint8Array, offset: number): void {
    const w = this.w;
    for (let i = 0; i < 16; i++) {
      const j = offset + i * 4;
      w[i] = (data[j] << 24) | (data[j + 1] << 16) | (data[j + 2] << 8) | data[j + 3];
    }
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15];
      const b = w[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    const h = this.h;
    let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (let i = 0; i < 64; i++) {
      const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (hh + s1 + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
    this.bytes += 64;
  }
}

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** SHA-256 of one buffer with the platform's native implementation. */
export async function sha256Native(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>));
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
