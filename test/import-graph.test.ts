/**
 * The import graph of src/: no cycles (static, type-only and dynamic imports all count), and every import
 * goes down the layers (errors, format, gpu/store, model, engine, worker/testing, app/cli, index). In
 * particular nothing in src/model imports from src/engine.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve('src');
const LAYERS: Record<string, number> = {
  'errors.ts': 0,
  format: 1,
  gpu: 2,
  store: 2,
  model: 3,
  engine: 4,
  worker: 5,
  testing: 5,
  app: 6,
  cli: 6,
  'index.ts': 7,
  'node.ts': 7, // the Node entry: index plus Dawn
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Relative imports of one file (import … from, export … from, import()), resolved to paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)'(\.{1,2}\/[^']+)'/gm)) out.push(resolve(dirname(file), m[1]!));
  return out;
}

function layerOf(file: string): number {
  const top = relative(SRC, file).split('/')[0]!;
  const layer = LAYERS[top];
  if (layer === undefined) throw new Error(`${top} has no layer in import-graph.test.ts: add it`);
  return layer;
}

const graph = new Map(files(SRC).map((f) => [f, importsOf(f)]));

describe('src import graph', () => {
  it('sees the imports (sanity: the engine imports the model)', () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get(join(SRC, 'engine/gpu-generator.ts'))).toContain(join(SRC, 'model/open-generator.ts'));
  });

  it('every import resolves to a file in src', () => {
    const missing = [...graph].flatMap(([f, deps]) => deps.filter((d) => d.endsWith('.ts') && !graph.has(d)).map((d) => `${relative(SRC, f)} → ${relative(SRC, d)}`));
    expect(missing).toEqual([]);
  });

  it('imports only go down the layers (no src/model → src/engine)', () => {
    const upward = [...graph].flatMap(([f, deps]) =>
      deps.filter((d) => graph.has(d) && layerOf(d) > layerOf(f)).map((d) => `${relative(SRC, f)} → ${relative(SRC, d)}`),
    );
    expect(upward).toEqual([]);
  });

  it('has no cycle', () => {
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, path: string[]): void => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(SRC, p)).join(' → '));
        return;
      }
      state.set(f, 'open');
      for (const d of graph.get(f) ?? []) if (graph.has(d)) visit(d, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of graph.keys()) visit(f, []);
    expect(cycles).toEqual([]);
  });
});
