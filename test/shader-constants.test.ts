import { describe, expect, it } from 'vitest';
import { nodeShaders } from '../src/gpu/node.ts';
import { constantDeclarations, SHADER_CONSTANTS } from '../src/gpu/shader-constants.ts';

/** A shader file with comments removed. */
function code(file: string): string {
  const source = nodeShaders().get(file);
  if (source === undefined) throw new Error(`shaders/${file}.wgsl is missing`);
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
}

describe('constants shared by TS and WGSL have one source (src/gpu/shader-constants.ts)', () => {
  for (const [file, constants] of Object.entries(SHADER_CONSTANTS)) {
    it(`shaders/${file}.wgsl declares none of its shared constants, and shaders use each`, () => {
      const wgsl = code(file);
      const users = [...nodeShaders().keys()].map(code).join('\n');
      for (const name of Object.keys(constants)) {
        expect(wgsl, `${file}.wgsl declares ${name} itself`).not.toMatch(new RegExp(`\\b(const|override|let|var)\\s+${name}\\b`));
        expect(users, `no shader uses ${name}`).toMatch(new RegExp(`\\b${name}\\b`));
      }
    });
  }

  it('declares each file constant as a u32 with the TS value', () => {
    expect(constantDeclarations('rope')).toContain(`const MAX_HEAD_DIM: u32 = ${SHADER_CONSTANTS.rope.MAX_HEAD_DIM}u;`);
    expect(constantDeclarations('df11_stream')).toContain('const SLOW: u32 = 4294967295u;');
    expect(constantDeclarations('rmsnorm')).toBe('');
  });

  it('overrides the kernels set from TS have no default to drift from', () => {
    for (const file of nodeShaders().keys()) {
      // a default that is an expression of other overrides (SPAN_BITS) is derived, not a copy
      const defaults = [...code(file).matchAll(/override\s+(\w+)\s*:\s*\w+\s*=\s*([^;]+);/g)].filter(([, , value]) => /^[\d.]+u?$|^(true|false)$/.test(value.trim()));
      expect(defaults.map(([, name]) => `${file}.${name}`)).toEqual([]);
    }
  });
});
