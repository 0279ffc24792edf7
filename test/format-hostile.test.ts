/**
 * The defects a fuzzing run found in the format readers (issue 15), each reproduced: malformed
 * model.safetensors.index.json, shard names outside the model directory, absurd config sizes,
 * safetensors data that does not end at the end of the file, and models missing tensors.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bufferSource } from '../src/format/byte-source.ts';
import { compressModel, decompressModel } from '../src/format/compress-model.ts';
import { specFromConfig } from '../src/format/config.ts';
import { memoryFiles, memorySink } from '../src/format/memory-files.ts';
import { openModel } from '../src/format/model-reader.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import { concatChunks, SafetensorsFile, serializeSafetensors, type TensorData } from '../src/format/safetensors.ts';
import { codeOf, codeOfCall } from '../src/testing/error-code.ts';

function loadDir(dir: string): Map<string, Uint8Array> {
  return new Map(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(`${dir}/${f}`))]));
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

async function tensorsOf(bytes: Uint8Array): Promise<TensorData[]> {
  const f = await SafetensorsFile.open(bufferSource(bytes), 'x');
  const out: TensorData[] = [];
  for (const info of f.tensors.values()) out.push({ name: info.name, dtype: info.dtype, shape: info.shape, data: await f.read(info.name) });
  return out;
}

/** stories-micro split into two shards with an index. */
async function sharded(): Promise<Map<string, Uint8Array>> {
  const files = loadDir('models/stories-micro');
  const all = await tensorsOf(files.get('model.safetensors')!);
  const weightMap: Record<string, string> = {};
  all.forEach((t, i) => (weightMap[t.name] = `model-0000${(i % 2) + 1}-of-00002.safetensors`));
  files.delete('model.safetensors');
  files.set('model-00001-of-00002.safetensors', concatChunks(serializeSafetensors(all.filter((_, i) => i % 2 === 0))));
  files.set('model-00002-of-00002.safetensors', concatChunks(serializeSafetensors(all.filter((_, i) => i % 2 === 1))));
  files.set('model.safetensors.index.json', text(JSON.stringify({ metadata: {}, weight_map: weightMap })));
  return files;
}

function withIndex(files: Map<string, Uint8Array>, edit: (map: Record<string, unknown>) => void): Map<string, Uint8Array> {
  const index = JSON.parse(new TextDecoder().decode(files.get('model.safetensors.index.json')));
  edit(index.weight_map);
  return new Map([...files, ['model.safetensors.index.json', text(JSON.stringify(index))]]);
}

describe('model.safetensors.index.json', () => {
  it('a good index opens', async () => {
    expect(await codeOf(openModel(memoryFiles(await sharded())))).toBe('ok');
  });

  it('malformed JSON or a weight_map that is not a map of names is a typed error', async () => {
    const files = await sharded();
    for (const bad of ['{"weight_map": {', 'null', '[]', '{"weight_map": 3}', '{"weight_map": []}']) {
      const f = new Map([...files, ['model.safetensors.index.json', text(bad)]]);
      expect(await codeOf(openModel(memoryFiles(f))), bad).toBe('config');
    }
    for (const value of [null, 7, {}, ['a']]) {
      const f = withIndex(files, (m) => (m['model.norm.weight'] = value));
      expect(await codeOf(openModel(memoryFiles(f))), JSON.stringify(value)).toBe('config');
    }
  });

  it('shard names stay inside the model directory, on disk too', async () => {
    const root = mkdtempSync(join(tmpdir(), 'df11-hostile-'));
    const dir = join(root, 'model');
    mkdirSync(dir);
    // A valid safetensors file next to the model directory: a '../' name must not reach it.
    const files = await sharded();
    writeFileSync(join(root, 'outside.safetensors'), files.get('model-00002-of-00002.safetensors')!);
    for (const name of ['', '.', '..', '../outside.safetensors', '/etc/passwd', 'sub/../../outside.safetensors', 'a\\b.safetensors']) {
      const f = withIndex(files, (m) => {
        for (const k of Object.keys(m)) if (m[k] === 'model-00002-of-00002.safetensors') m[k] = name;
      });
      for (const [n, bytes] of f) writeFileSync(join(dir, n), bytes);
      expect(await codeOf(openModel(directoryFiles(dir))), name).toBe('config');
      expect(await codeOf(openModel(memoryFiles(f))), name).toBe('config');
    }
    expect(await codeOf(directoryFiles(dir).open('../outside.safetensors'))).toBe('config');
  });

  it('a shard the index names but the directory lacks is missing-tensor, not ENOENT', async () => {
    const files = await sharded();
    files.delete('model-00002-of-00002.safetensors');
    expect(await codeOf(openModel(memoryFiles(files)))).toBe('missing-tensor');
    const root = mkdtempSync(join(tmpdir(), 'df11-hostile-'));
    for (const [n, bytes] of files) writeFileSync(join(root, n), bytes);
    expect(await codeOf(openModel(directoryFiles(root)))).toBe('missing-tensor');
  });

  it('an index listing only some shards, or a tensor its shard lacks, is missing-tensor', async () => {
    const files = await sharded();
    const partial = withIndex(files, (m) => {
      for (const k of Object.keys(m)) if (m[k] === 'model-00002-of-00002.safetensors') delete m[k];
    });
    expect(await codeOf(openModel(memoryFiles(partial)))).toBe('missing-tensor');
    const moved = withIndex(files, (m) => (m['model.norm.weight'] = m['model.norm.weight'] === 'model-00001-of-00002.safetensors' ? 'model-00002-of-00002.safetensors' : 'model-00001-of-00002.safetensors'));
    expect(await codeOf(openModel(memoryFiles(moved)))).toBe('missing-tensor');
  });
});

describe('config sizes', () => {
  const base = JSON.parse(readFileSync('models/stories-micro/config.json', 'utf8')) as Record<string, unknown>;

  it('absurd sizes fail fast with a typed error', () => {
    for (const [key, value] of [
      ['num_hidden_layers', 65536],
      ['num_hidden_layers', 2 ** 31],
      ['num_hidden_layers', 2 ** 53 - 1],
      ['hidden_size', 2 ** 40],
      ['vocab_size', 2 ** 40],
      ['intermediate_size', 2 ** 40],
      ['num_attention_heads', 2 ** 20],
      ['head_dim', 2 ** 20],
      ['max_position_embeddings', 2 ** 40],
    ] as const) {
      expect(codeOfCall(() => specFromConfig({ ...base, [key]: value })), `${key} ${value}`).toBe('config');
    }
    expect(codeOfCall(() => specFromConfig(base))).toBe('ok');
  });

  it('more layers than the tensors hold is missing-tensor at open, before any per-layer loop', async () => {
    const files = loadDir('models/stories-micro');
    for (const layers of [9, 1000]) {
      const c = { ...base, num_hidden_layers: layers };
      const f = new Map([...files, ['config.json', text(JSON.stringify(c))]]);
      expect(await codeOf(openModel(memoryFiles(f))), String(layers)).toBe('missing-tensor');
      expect(await codeOf(compressModel(memoryFiles(f), memorySink(new Map()))), String(layers)).toBe('missing-tensor');
    }
  });
});

describe('safetensors data extent', () => {
  it('a length prefix lowered by one (data shifted a byte) is rejected', async () => {
    const bytes = loadDir('models/stories-micro').get('model.safetensors')!.slice();
    const view = new DataView(bytes.buffer);
    view.setUint32(0, view.getUint32(0, true) - 1, true);
    expect(await codeOf(SafetensorsFile.open(bufferSource(bytes), 'x'))).toBe('safetensors-bounds');
  });

  it('trailing bytes after the last tensor, or a hole between tensors, are rejected', async () => {
    const good = concatChunks(serializeSafetensors([{ name: 'a', dtype: 'U8', shape: [4], data: new Uint8Array(4) }]));
    expect(await codeOf(SafetensorsFile.open(bufferSource(good), 'x'))).toBe('ok');
    const trailing = new Uint8Array(good.length + 1);
    trailing.set(good);
    expect(await codeOf(SafetensorsFile.open(bufferSource(trailing), 'x'))).toBe('safetensors-bounds');
    const header = text(JSON.stringify({ a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] }, b: { dtype: 'U8', shape: [2], data_offsets: [3, 5] } }));
    const holed = new Uint8Array(8 + header.length + 5);
    new DataView(holed.buffer).setUint32(0, header.length, true);
    holed.set(header, 8);
    expect(await codeOf(SafetensorsFile.open(bufferSource(holed), 'x'))).toBe('safetensors-bounds');
  });
});

describe('every tensor the spec needs', () => {
  it('a header that leaves a tensor out fails openModel, compressModel and decompressModel', async () => {
    const files = loadDir('models/stories-micro');
    const all = await tensorsOf(files.get('model.safetensors')!);
    const lacking = new Map([...files, ['model.safetensors', concatChunks(serializeSafetensors(all.filter((t) => t.name !== 'model.layers.1.post_attention_layernorm.weight')))]]);
    expect(await codeOf(openModel(memoryFiles(lacking)))).toBe('missing-tensor');
    expect(await codeOf(compressModel(memoryFiles(lacking), memorySink(new Map())))).toBe('missing-tensor');

    const df11 = loadDir('test/fixtures/official-df11/tiny-qwen3');
    const rest = await tensorsOf(df11.get('model.safetensors')!);
    const noNorm = new Map([...df11, ['model.safetensors', concatChunks(serializeSafetensors(rest.filter((t) => t.name !== 'model.norm.weight')))]]);
    expect(await codeOf(openModel(memoryFiles(noNorm)))).toBe('missing-tensor');
    const out = new Map<string, Uint8Array>();
    expect(await codeOf(decompressModel(memoryFiles(noNorm), memorySink(out)))).toBe('missing-tensor');
    expect(out.size).toBe(0);
    // A whole unit file gone: its matrices are missing.
    const noLayer = new Map(df11);
    noLayer.delete('model_layers_1.safetensors');
    expect(await codeOf(decompressModel(memoryFiles(noLayer), memorySink(out)))).toBe('missing-tensor');
  });

  it('a stored tensor whose shape disagrees with the config is rejected', async () => {
    const files = loadDir('models/stories-micro');
    const all = await tensorsOf(files.get('model.safetensors')!);
    const reshaped = all.map((t) => (t.name === 'model.norm.weight' ? { ...t, shape: [t.data.length / 4, 2] } : t));
    const f = new Map([...files, ['model.safetensors', concatChunks(serializeSafetensors(reshaped))]]);
    expect(await codeOf(openModel(memoryFiles(f)))).toBe('config');
  });
});
