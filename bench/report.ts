// Output helpers shared by the benchmarks: one JSON line per result, numbers rounded for reading.

/** Write one result as a JSON line on stdout. */
export function emit(result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** x to 4 significant digits (SwiftShader numbers are tiny, GPU ones large). */
export function sig(x: number): number {
  return Number(x.toPrecision(4));
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
