/** Index of the first differing element, -1 if equal (cheaper than a deep equal on big arrays). */
export function firstMismatch(a: Uint16Array, b: Uint16Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}
