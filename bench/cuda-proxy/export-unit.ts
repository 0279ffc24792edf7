/**
 * Writes one DF11 unit of N(0, 0.02) BF16 weights (rows x 4096, seeded like bench/decode-bench.ts) as raw
 * files for the CUDA proxy (bench.py): stream.bin, gaps.bin, outpos.bin, luts.bin, meta.json with an
 * exponent hash (sum of exponent[i] * (i * 2654435761 mod 2^32), mod 2^64) to check the decode against.
 *   npx tsx bench/cuda-proxy/export-unit.ts <dir> [rows=4096]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeUnit } from '../../src/format/df11-encoder.ts';
import { normalBf16 } from '../../src/testing/random-weights.ts';

const [dir = 'dist-bench/cuda-proxy', rowsArg = '4096'] = process.argv.slice(2);
const bits = normalBf16(Number(rowsArg) * 4096, 2024);
const unit = encodeUnit('proxy', [{ name: 'weight', shape: [Number(rowsArg), 4096], bits }]);
mkdirSync(dir, { recursive: true });
const write = (name: string, a: ArrayBufferView) => writeFileSync(join(dir, name), new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
write('stream.bin', unit.encodedExponent);
write('gaps.bin', unit.gaps);
write('outpos.bin', unit.outputPositions);
write('luts.bin', unit.luts);
const mask = (1n << 64n) - 1n;
let hash = 0n;
for (let i = 0; i < bits.length; i++) hash = (hash + BigInt((bits[i] >> 7) & 0xff) * BigInt(Math.imul(i, 2654435761) >>> 0)) & mask;
const meta = { n: bits.length, nBytes: unit.encodedExponent.length, nBlocks: unit.outputPositions.length - 1, k: unit.luts.length / 256, expHash: hash.toString() };
writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta));
process.stdout.write(`${JSON.stringify(meta)}\n`);
