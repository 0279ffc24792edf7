/**
 * One source of truth for a uniform struct's layout: the WGSL declaration itself. `uniformLayout`
 * reads `struct Name { ... }` out of a shader's source and computes member offsets with WGSL's
 * uniform-address-space rules; `packUniform` writes values by member name and refuses missing or
 * unknown names, so a TS caller can never silently drift from the shader.
 *
 * Supported member types: u32, i32, f32, vec2/3/4 of those (`vec4<f32>` or `vec4f`), and
 * `array<vec4<T>, N>` (the only arrays whose uniform stride needs no padding).
 */
import { Df11Error } from '../errors.ts';

type Scalar = 'u32' | 'i32' | 'f32';

export interface UniformMember {
  name: string;
  scalar: Scalar;
  /** Byte offset inside the struct. */
  offset: number;
  /** Number of scalars (1 for a scalar, 4 for a vec4, 4*N for array<vec4, N>). */
  count: number;
}

export interface UniformLayout {
  struct: string;
  /** Struct size rounded up to 16 bytes (a uniform binding's minimum useful size). */
  size: number;
  members: ReadonlyMap<string, UniformMember>;
  /** The members in declaration order (for packing loops). */
  order: readonly UniformMember[];
}

const MEMBER = /^(\w+)\s*:\s*(.+)$/;
const SCALAR = /^(u32|i32|f32)$/;
const VECTOR = /^vec([234])(?:<(u32|i32|f32)>|([uif]))$/;
const ARRAY = /^array<\s*vec4(?:<(u32|i32|f32)>|([uif]))\s*,\s*(\d+)u?\s*>$/;
const SHORT: Record<string, Scalar> = { u: 'u32', i: 'i32', f: 'f32' };

/** Layout of `struct <name>` declared in `wgsl`. */
export function uniformLayout(wgsl: string, name: string): UniformLayout {
  const body = new RegExp(`struct\\s+${name}\\s*\\{([^}]*)\\}`).exec(stripComments(wgsl))?.[1];
  if (body === undefined) throw layoutError(name, 'struct not found in shader source');
  const members = new Map<string, UniformMember>();
  let offset = 0;
  let structAlign = 4;
  for (const decl of splitTopLevel(body)) {
    const m = MEMBER.exec(decl);
    if (!m) throw layoutError(name, `cannot parse member '${decl}'`);
    const [, member, type] = m;
    const { scalar, count, align, size } = typeInfo(type.replace(/\s+/g, ''), name);
    offset = roundUp(offset, align);
    members.set(member, { name: member, scalar, offset, count });
    offset += size;
    structAlign = Math.max(structAlign, align);
  }
  return { struct: name, size: roundUp(roundUp(offset, structAlign), 16), members, order: [...members.values()] };
}

/** Bytes of a uniform buffer holding `values`; every member must be given, no other names. */
export function packUniform(layout: UniformLayout, values: Readonly<Record<string, number | readonly number[]>>): ArrayBuffer {
  const buffer = new ArrayBuffer(layout.size);
  packUniformInto(layout, values, new DataView(buffer), 0);
  return buffer;
}

/**
 * packUniform into `view` at byte `base` (layout.size bytes), writing only the scalars whose bits change;
 * true when any did. Per dispatch (src/gpu/kernels/kernel.ts): no allocation, and an unchanged block is
 * only read.
 */
export function packUniformInto(layout: UniformLayout, values: Readonly<Record<string, number | readonly number[]>>, view: DataView, base: number): boolean {
  let keys = 0;
  for (const _ in values) keys++;
  // every member is given (checked below), so no other name is when the counts agree
  if (keys !== layout.order.length) {
    for (const key in values) {
      if (!layout.members.has(key)) throw layoutError(layout.struct, `no member '${key}'`);
    }
  }
  let changed = false;
  for (let m = 0; m < layout.order.length; m++) {
    const member = layout.order[m]!;
    const value = values[member.name];
    if (value === undefined) throw layoutError(layout.struct, `missing value for '${member.name}'`);
    if (typeof value === 'number') {
      if (member.count !== 1) throw layoutError(layout.struct, `'${member.name}' needs ${member.count} values, got 1`);
      if (writeScalar(view, base + member.offset, value, layout, member)) changed = true;
      continue;
    }
    if (value.length !== member.count) throw layoutError(layout.struct, `'${member.name}' needs ${member.count} values, got ${value.length}`);
    for (let i = 0; i < value.length; i++) {
      if (writeScalar(view, base + member.offset + 4 * i, value[i]!, layout, member)) changed = true;
    }
  }
  return changed;
}

/** Write `v` as the member's scalar type at `at` unless those bits are there already; true when written. */
function writeScalar(view: DataView, at: number, v: number, layout: UniformLayout, member: UniformMember): boolean {
  if (member.scalar === 'f32') {
    // Object.is: +0 and -0 differ in bits, NaN is one value in JS
    if (Object.is(view.getFloat32(at, true), Math.fround(v))) return false;
    view.setFloat32(at, v, true);
  } else if (member.scalar === 'i32') {
    if (view.getInt32(at, true) === checkedInt(v, -(2 ** 31), 2 ** 31 - 1, layout, member)) return false;
    view.setInt32(at, v, true);
  } else {
    if (view.getUint32(at, true) === checkedInt(v, 0, 2 ** 32 - 1, layout, member)) return false;
    view.setUint32(at, v, true);
  }
  return true;
}

function typeInfo(type: string, struct: string): { scalar: Scalar; count: number; align: number; size: number } {
  if (SCALAR.test(type)) return { scalar: type as Scalar, count: 1, align: 4, size: 4 };
  const vec = VECTOR.exec(type);
  if (vec) {
    const n = Number(vec[1]);
    return { scalar: (vec[2] as Scalar | undefined) ?? SHORT[vec[3]], count: n, align: n === 2 ? 8 : 16, size: 4 * n };
  }
  const arr = ARRAY.exec(type);
  if (arr) {
    const n = Number(arr[3]);
    return { scalar: (arr[1] as Scalar | undefined) ?? SHORT[arr[2]], count: 4 * n, align: 16, size: 16 * n };
  }
  throw layoutError(struct, `unsupported member type '${type}'`);
}

function checkedInt(v: number, min: number, max: number, layout: UniformLayout, member: UniformMember): number {
  if (!Number.isInteger(v) || v < min || v > max) throw layoutError(layout.struct, `'${member.name}' = ${v} is not a ${member.scalar}`);
  return v;
}

/** Member declarations: the body split on commas outside <...>. */
function splitTopLevel(body: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of body) {
    if (ch === '<') depth++;
    if (ch === '>') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter(Boolean);
}

function stripComments(wgsl: string): string {
  return wgsl.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
}

function roundUp(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}

function layoutError(struct: string, what: string): Df11Error {
  return new Df11Error('gpu-validation', `uniform struct ${struct}: ${what}`);
}
