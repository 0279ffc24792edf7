/** The DF11 layouts published on the hub (see official-layouts.ts): listed, opened and decoded bit for bit. */
import { describe, expect, it } from 'vitest';
import { decodeUnit } from '../src/format/df11-cpu-decoder.ts';
import { memoryFiles } from '../src/format/memory-files.ts';
import { openModel } from '../src/format/model-reader.ts';
import { specFromConfig } from '../src/format/config.ts';
import { listRemoteFiles } from '../src/store/listing.ts';
import { codeOf } from '../src/testing/error-code.ts';
import { readReferenceTensors, type RefTensor } from './format-reference.ts';
import { eightB, hubFetch, pickleRepo, qwen3FourB, singleFile, withBf16Index, type Files } from './official-layouts.ts';

const STORIES = 'models/stories-15m/model.safetensors';
const QWEN3 = 'test/fixtures/hf/tiny-qwen3/model.safetensors';

/** Every weight of the BF16 original, read back from the DF11 directory (units decoded on the CPU). */
async function expectBitExact(files: Files, originalPath: string): Promise<string[]> {
  const model = await openModel(memoryFiles(files));
  expect(model.format).toBe('df11');
  const ref = readReferenceTensors(originalPath);
  const seen = new Set<string>();
  for (const unitName of model.unitNames) {
    const unit = await model.readUnit(unitName);
    const bits = decodeUnit(unit);
    for (const m of unit.matrices) {
      const r: RefTensor | undefined = ref.get(m.name);
      expect(r, m.name).toBeDefined();
      expect(Buffer.from(bits.buffer, bits.byteOffset + 2 * m.offset, 2 * m.size).equals(r!.bytes), m.name).toBe(true);
      seen.add(m.name);
    }
  }
  for (const [name, r] of ref) {
    if (seen.has(name)) continue;
    expect(model.locate(name), name).toMatchObject({ kind: 'tensor' });
    expect(Buffer.from((await model.readTensor(name, 'BF16')).data).equals(r.bytes), name).toBe(true);
    seen.add(name);
  }
  expect(seen.size).toBe(ref.size);
  return model.unitNames;
}

const DIR = 'https://hub.test/org/repo/resolve/main/';
const listed = async (files: Files): Promise<string[]> => (await listRemoteFiles(DIR, hubFetch(files, DIR))).map((f) => f.name).sort();
const stories = [...readReferenceTensors(STORIES).keys()];
const layers8 = Array.from({ length: 8 }, (_, i) => `model.layers.${i}`);

describe('DFloat11 0.2.0 with transformers-4.x configs', () => {
  it('the config reads the same as the 0.5.0 one (torch_dtype, top-level rope_theta)', () => {
    const c = JSON.parse(new TextDecoder().decode(eightB().get('config.json')));
    expect(c.rope_parameters).toBeUndefined();
    expect(specFromConfig(c).ropes).toEqual([{ theta: 10000, type: 'default', rotaryDim: 64 }]);
  });

  it('8B style (lm_head and embed_tokens are units) decodes bit-exact and lists every unit file', async () => {
    const files = eightB();
    expect(await expectBitExact(files, STORIES)).toEqual(['lm_head', 'model.embed_tokens', ...layers8]);
    expect(await listed(files)).toEqual([...files.keys()].sort());
  });

  it('Qwen3-4B style (layers only, BF16 embedding, tied head) decodes bit-exact; the head is the embedding', async () => {
    const files = await qwen3FourB();
    expect(await expectBitExact(files, QWEN3)).toEqual(['model.layers.0', 'model.layers.1']);
    const model = await openModel(memoryFiles(files));
    expect(model.locate('lm_head.weight')).toMatchObject({ kind: 'tensor', name: 'model.embed_tokens.weight', shape: [512, 64] });
    expect(await listed(files)).toEqual([...files.keys()].sort());
  });
});

describe('a model.safetensors.index.json beside DF11 files', () => {
  it('is ignored, as the official loader does: every unit is still found and listed', async () => {
    const files = withBf16Index(eightB(), stories);
    expect(await expectBitExact(files, STORIES)).toEqual(['lm_head', 'model.embed_tokens', ...layers8]);
    const names = await listed(files);
    expect(names).toContain('model_layers_7.safetensors');
    expect(names.some((n) => n.startsWith('model-0000'))).toBe(false);
  });
});

describe('save_single_file output', () => {
  it('one model.safetensors holding every unit decodes bit-exact and lists as that one file', async () => {
    const files = await singleFile(eightB());
    expect([...files.keys()].filter((n) => n.endsWith('.safetensors'))).toEqual(['model.safetensors']);
    expect(await expectBitExact(files, STORIES)).toEqual(['lm_head', 'model.embed_tokens', ...layers8]);
    expect(await listed(files)).toEqual([...files.keys()].sort());
  });

  it('a DF11 repo missing some of its unit files is an error naming one', async () => {
    const files = eightB();
    files.delete('model_layers_3.safetensors');
    await expect(listRemoteFiles(DIR, hubFetch(files, DIR))).rejects.toMatchObject({ code: 'network', message: expect.stringContaining('model_layers_3') });
  });
});

describe('DFloat11 v0.1 pickle repos', () => {
  it('are unsupported-format, on disk and on the hub, and the message says why', async () => {
    const files = pickleRepo();
    await expect(openModel(memoryFiles(files))).rejects.toMatchObject({ code: 'unsupported-format', message: expect.stringContaining('v0.1') });
    await expect(listRemoteFiles(DIR, hubFetch(files, DIR))).rejects.toMatchObject({ code: 'unsupported-format', message: expect.stringContaining('decode.ptx') });
  });

  it('a BF16 repo without weights is still a plain 404', async () => {
    const files = pickleRepo();
    files.delete('decode.ptx');
    expect(await codeOf(listRemoteFiles(DIR, hubFetch(files, DIR)))).toBe('network');
  });
});

describe('access', () => {
  it('401 and 403 are access-denied, not network', async () => {
    for (const status of [401, 403]) {
      const fetch = async (): Promise<Response> => new Response('gated', { status });
      expect(await codeOf(listRemoteFiles(DIR, fetch)), String(status)).toBe('access-denied');
    }
  });
});
