// Benchmark options, declared once per benchmark: Node reads them from argv (node:util parseArgs, same
// spec), the bench page from its URL query (?rows=512&small) under the same names.

export type OptionSpec = Record<string, { type: 'string'; default?: string } | { type: 'boolean'; default?: boolean }>;
export type OptionValues = Record<string, string | boolean | undefined>;

/** The values of `spec` in a URL query: strings as given, booleans present unless "0" or "false"; defaults as parseArgs. */
export function queryValues(spec: OptionSpec, params: URLSearchParams): OptionValues {
  const values: OptionValues = {};
  for (const [name, option] of Object.entries(spec)) {
    const raw = params.get(name);
    if (option.type === 'boolean') values[name] = raw === null ? option.default : raw !== '0' && raw !== 'false';
    else values[name] = raw ?? option.default;
  }
  return values;
}

/** A string option (its default applied by the parser), or `fallback` when absent. */
export function stringOption(values: OptionValues, name: string, fallback?: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : fallback;
}
