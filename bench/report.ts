// Output helpers shared by the benchmarks: one JSON line per result, numbers rounded for reading.

/** Where the lines go (stdout in Node; the bench page sends them to its console and #results) and what every line carries. */
const report: { sink: (line: string) => void; fields: Record<string, unknown> } = {
  sink: (line) => process.stdout.write(`${line}\n`),
  fields: {},
};

/** Send the lines to `sink` (default stdout) and add `fields` (e.g. runtime and adapter) to every one. */
export function reportTo(fields: Record<string, unknown>, sink?: (line: string) => void): void {
  report.fields = fields;
  if (sink) report.sink = sink;
}

/** Write one result as a JSON line. */
export function emit(result: Record<string, unknown>): void {
  report.sink(JSON.stringify({ ...result, ...report.fields }));
}

/** x to 4 significant digits (SwiftShader numbers are tiny, GPU ones large). */
export function sig(x: number): number {
  return Number(x.toPrecision(4));
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
