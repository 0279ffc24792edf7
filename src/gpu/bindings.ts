/**
 * One source of truth for where each buffer binds: the shader's own `@group(0) @binding(N) var<...> name`
 * declarations. A kernel wrapper names the storage buffers it will bind; `shaderBindings` checks those
 * names against the declarations (a missing, unknown or repeated name throws before the pipeline is
 * compiled) and `bindGroupEntries` turns named resources into entries, so no binding index is written in TS.
 */
import { Df11Error } from '../errors.ts';

/** A shader's binding indices: its uniform parameters (a `var<uniform>` of type `Params`) and its storage buffers by name. */
export interface ShaderBindings<N extends string = string> {
  shader: string;
  params: number;
  storage: Readonly<Record<N, number>>;
}

interface Declaration {
  binding: number;
  space: string;
  name: string;
  type: string;
}

const DECLARATION = /@group\(\s*0\s*\)\s*@binding\(\s*(\d+)\s*\)\s*var\s*<\s*(\w+)[^>]*>\s*(\w+)\s*:\s*([^;]+);/g;

/** The group-0 declarations of `wgsl` (comments ignored). */
function declarations(wgsl: string): Declaration[] {
  const code = wgsl.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  return [...code.matchAll(DECLARATION)].map((m) => ({ binding: Number(m[1]), space: m[2], name: m[3], type: m[4].trim() }));
}

/**
 * Binding indices of `shader` (source `wgsl`, includes resolved) for the storage buffers `names`: every
 * name must be a storage buffer the shader declares, and every storage buffer it declares must be named.
 * `entryPoint` (a module with several entry points, each using part of its buffers): the names are those
 * that entry point uses, and the shader may declare more (Dawn's auto layout rejects a wrong subset when the
 * bind group is made).
 */
export function shaderBindings<N extends string>(shader: string, wgsl: string, names: readonly N[], entryPoint?: string): ShaderBindings<N> {
  const fail = (what: string) => new Df11Error('gpu-validation', `shader ${shader}: ${what}`);
  const decls = declarations(wgsl);
  const params = decls.filter((d) => d.space === 'uniform' && d.type === 'Params');
  if (params.length !== 1) throw fail(`expected one var<uniform> of type Params, found ${params.length}`);
  const declared = new Map(decls.filter((d) => d.space === 'storage').map((d) => [d.name, d.binding]));
  const storage: Partial<Record<N, number>> = {};
  for (const name of names) {
    const binding = declared.get(name);
    if (binding === undefined) throw fail(`declares no storage buffer '${name}' (it has ${[...declared.keys()].join(', ') || 'none'})`);
    if (storage[name] !== undefined) throw fail(`storage buffer '${name}' is named twice`);
    storage[name] = binding;
  }
  const unnamed = [...declared.keys()].filter((d) => !(names as readonly string[]).includes(d));
  if (unnamed.length > 0 && entryPoint === undefined) throw fail(`storage buffer(s) ${unnamed.map((d) => `'${d}'`).join(', ')} not named by the caller`);
  return { shader: entryPoint === undefined ? shader : `${shader}:${entryPoint}`, params: params[0].binding, storage: storage as Record<N, number> };
}

/** Bind group entries: `params` at the Params binding, each named resource at its own binding. */
export function bindGroupEntries<N extends string>(
  bindings: ShaderBindings<N>,
  params: GPUBufferBinding,
  resources: Readonly<Record<N, GPUBufferBinding>>,
): GPUBindGroupEntry[] {
  const names = Object.keys(resources);
  const unknown = names.filter((name) => !(name in bindings.storage));
  if (unknown.length > 0 || names.length !== Object.keys(bindings.storage).length) {
    throw new Df11Error('gpu-validation', `shader ${bindings.shader}: bound ${names.join(', ')}; it declares ${Object.keys(bindings.storage).join(', ')}`);
  }
  return [
    { binding: bindings.params, resource: params },
    ...(Object.entries(resources) as Array<[N, GPUBufferBinding]>).map(([name, resource]) => ({ binding: bindings.storage[name], resource })),
  ];
}
