import { Df11Error } from '../errors.ts';

/** "16GB", "16GiB", "512MB", "1e9", "123456": GB/MB/KB are binary units, like GPU memory sizes. */
export function parseBytes(text: string): number {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  if (!m) throw new Df11Error('bad-request', `'${text}' is not a byte size (e.g. 16GB, 512MiB, 1000000)`);
  const scale = 2 ** (10 * ' kmgt'.indexOf((m[2] || ' ').toLowerCase()));
  const bytes = Math.round(Number(m[1]) * scale);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new Df11Error('bad-request', `'${text}' is not a positive byte size`);
  return bytes;
}
