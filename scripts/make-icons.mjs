// Draws the app icons (public/icons/*.png) without any image library: a violet gradient tile with three
// bars of shrinking width (text, compressed). Run: node scripts/make-icons.mjs
import { writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

const BARS = [
  { y: 0.36, w: 0.62 },
  { y: 0.5, w: 0.46 },
  { y: 0.64, w: 0.3 },
];

/** Coverage (0..1) of the icon shape at (x, y) in unit coordinates. */
function inRoundRect(x, y, x0, y0, x1, y1, r) {
  const cx = Math.min(Math.max(x, x0 + r), x1 - r);
  const cy = Math.min(Math.max(y, y0 + r), y1 - r);
  return (x - cx) ** 2 + (y - cy) ** 2 <= r * r && x >= x0 && x <= x1 && y >= y0 && y <= y1;
}

function pixel(x, y, maskable) {
  const pad = maskable ? 0 : 0.04;
  if (!inRoundRect(x, y, pad, pad, 1 - pad, 1 - pad, maskable ? 0 : 0.2)) return [0, 0, 0, 0];
  const t = (x + y) / 2;
  const bg = [0x31 + (0x7c - 0x31) * t, 0x2e + (0x3a - 0x2e) * t, 0x81 + (0xed - 0x81) * t];
  // maskable icons keep their content inside the central 80% safe zone
  const s = maskable ? 0.8 : 1;
  const u = (x - 0.5) / s + 0.5;
  const v = (y - 0.5) / s + 0.5;
  for (const bar of BARS) if (inRoundRect(u, v, 0.2, bar.y - 0.045, 0.2 + bar.w, bar.y + 0.045, 0.045)) return [255, 255, 255, 255];
  return [...bg, 255];
}

function render(size, maskable) {
  const ss = 4;
  const rows = [];
  for (let py = 0; py < size; py++) {
    const row = Buffer.alloc(1 + size * 4);
    for (let px = 0; px < size; px++) {
      const acc = [0, 0, 0, 0];
      for (let sy = 0; sy < ss; sy++)
        for (let sx = 0; sx < ss; sx++) {
          const c = pixel((px + (sx + 0.5) / ss) / size, (py + (sy + 0.5) / ss) / size, maskable);
          for (let i = 0; i < 3; i++) acc[i] += c[i] * c[3];
          acc[3] += c[3];
        }
      const a = acc[3] / (ss * ss);
      for (let i = 0; i < 3; i++) row[1 + px * 4 + i] = acc[3] ? Math.round(acc[i] / acc[3]) : 0;
      row[1 + px * 4 + 3] = Math.round(a);
    }
    rows.push(row);
  }
  return png(size, size, Buffer.concat(rows));
}

function png(width, height, raw) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const out = new URL('../public/icons/', import.meta.url);
writeFileSync(new URL('icon-192.png', out), render(192, false));
writeFileSync(new URL('icon-512.png', out), render(512, false));
writeFileSync(new URL('maskable-512.png', out), render(512, true));
writeFileSync(new URL('apple-touch-icon.png', out), render(180, true));
