import { describe, expect, it } from 'vitest';
import { isDf11Error } from '../src/errors.ts';
import { nodeShaders } from '../src/gpu/node.ts';
import { packUniform, packUniformInto, uniformLayout } from '../src/gpu/uniforms.ts';

const WGSL = `
// comment with struct Fake { x: vec4<f32> }
struct Other { a: vec4<f32> }
struct P {
  a: u32,            // trailing comment, with a comma
  b: f32,
  c: vec3<f32>,
  d: i32,
  e: vec2u,
  f: array<vec4<u32>, 2>,
  g: f32,
}`;

describe('uniformLayout / packUniform', () => {
  it('computes WGSL uniform offsets (vec3 align 16 with a scalar packed after it, vec2 align 8, arrays of vec4)', () => {
    const layout = uniformLayout(WGSL, 'P');
    const offsets = Object.fromEntries([...layout.members.values()].map((m) => [m.name, m.offset]));
    expect(offsets).toEqual({ a: 0, b: 4, c: 16, d: 28, e: 32, f: 48, g: 80 });
    expect(layout.size).toBe(96);
  });

  it('packs by name, little-endian, and refuses missing, unknown or out-of-range values', () => {
    const layout = uniformLayout(WGSL, 'P');
    const values = { a: 0xfffffffe, b: 1.5, c: [1, 2, 3], d: -7, e: [4, 5], f: [1, 2, 3, 4, 5, 6, 7, 8], g: -0.25 };
    const view = new DataView(packUniform(layout, values));
    expect(view.getUint32(0, true)).toBe(0xfffffffe);
    expect(view.getFloat32(4, true)).toBe(1.5);
    expect(view.getFloat32(24, true)).toBe(3);
    expect(view.getInt32(28, true)).toBe(-7);
    expect(view.getUint32(36, true)).toBe(5);
    expect(view.getUint32(76, true)).toBe(8);
    expect(view.getFloat32(80, true)).toBe(-0.25);
    const { g: _g, ...missing } = values;
    for (const bad of [missing, { ...values, h: 1 }, { ...values, a: -1 }, { ...values, a: 1.5 }, { ...values, c: [1, 2] }]) {
      let err: unknown;
      try {
        packUniform(layout, bad);
      } catch (e) {
        err = e;
      }
      expect(isDf11Error(err, 'gpu-validation'), JSON.stringify(bad)).toBe(true);
    }
  });

  it('packs into a view only the values whose bits change, and says whether any did', () => {
    const layout = uniformLayout(WGSL, 'P');
    const values = { a: 1, b: 0, c: [1, 2, 3], d: -7, e: [4, 5], f: [1, 2, 3, 4, 5, 6, 7, 8], g: -0.25 };
    const view = new DataView(new ArrayBuffer(64 + layout.size));
    expect(packUniformInto(layout, values, view, 64)).toBe(true);
    expect(packUniformInto(layout, values, view, 64)).toBe(false);
    expect(packUniformInto(layout, { ...values, b: -0 }, view, 64)).toBe(true); // -0 and +0 differ in bits
    expect(view.getUint32(68, true)).toBe(0x80000000);
    expect(packUniformInto(layout, { ...values, b: -0, f: [1, 2, 3, 4, 5, 6, 7, 9] }, view, 64)).toBe(true);
    expect(view.getUint32(64 + 76, true)).toBe(9);
    expect(packUniformInto(layout, { ...values, b: -0, f: [1, 2, 3, 4, 5, 6, 7, 9], g: Math.fround(-0.25) }, view, 64)).toBe(false);
    expect(view.getUint32(0, true)).toBe(0); // nothing outside the block
  });

  it('reads the decode kernel Params struct (12 u32 members)', () => {
    const layout = uniformLayout(nodeShaders().get('df11_decode_body')!, 'Params');
    expect(layout.members.size).toBe(12);
    expect(layout.size).toBe(48);
    expect(layout.members.get('blocks_per_row')!.offset).toBe(44);
  });
});
