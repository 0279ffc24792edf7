import { parseArgs } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DECODE_OPTIONS } from '../bench/decode-suite.ts';
import { FORWARD_OPTIONS } from '../bench/forward-suite.ts';
import { queryValues } from '../bench/options.ts';

/** The bench page reads a benchmark's options from its query exactly as the Node script reads its flags. */
describe('bench options: URL query = CLI flags', () => {
  const cases: [string, typeof DECODE_OPTIONS | typeof FORWARD_OPTIONS, string[], string][] = [
    ['decode defaults', DECODE_OPTIONS, [], ''],
    ['decode shape', DECODE_OPTIONS, ['--rows', '512', '--cols', '300', '--wg', '256', '--copy-mib', '4'], 'rows=512&cols=300&wg=256&copy-mib=4'],
    ['forward defaults', FORWARD_OPTIONS, [], ''],
    ['forward small', FORWARD_OPTIONS, ['--small', '--models', 'tiny,stories-15m', '--resident', '0,100', '--kv', 'f16'], 'small&models=tiny,stories-15m&resident=0,100&kv=f16'],
    ['forward small=1', FORWARD_OPTIONS, ['--small'], 'small=1'],
    ['decode fused', DECODE_OPTIONS, ['--only', 'fused', '--fused', '64x257,300x100'], 'only=fused&fused=64x257,300x100'],
    ['forward fused', FORWARD_OPTIONS, ['--fused', '--resident', '0,50'], 'fused&resident=0,50'],
  ];
  for (const [name, spec, argv, query] of cases) {
    it(name, () => {
      const { values } = parseArgs({ options: spec, args: argv });
      expect(queryValues(spec, new URLSearchParams(query))).toEqual({ ...values });
    });
  }

  it('a boolean given as 0 or false is off; an unknown parameter is ignored', () => {
    expect(queryValues(FORWARD_OPTIONS, new URLSearchParams('small=0&bench=forward')).small).toBe(false);
    expect(queryValues(FORWARD_OPTIONS, new URLSearchParams('small=false')).small).toBe(false);
    expect(Object.keys(queryValues(FORWARD_OPTIONS, new URLSearchParams('bench=forward')))).not.toContain('bench');
  });
});
