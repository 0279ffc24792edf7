import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../src/testing/error-code.ts';
import { decodeUnit } from '../src/format/df11-cpu-decoder.ts';
import { memoryFiles } from '../src/format/memory-files.ts';
import { openModel } from '../src/format/model-reader.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import { asUint16, concatChunks, SafetensorsFile, serializeSafetensors, type TensorData } from '../src/format/safetensors.ts';
import { bufferSource } from '../src/format/byte-source.ts';
import { readReferenceTensors, refBits } from './format-reference.ts';
import { GEMMA3_TEXT_FIXTURE, gemma3Multimodal } from './gemma3-multimodal.ts';

/** A directory copied into memory, to tamper with. */
function loadDir(dir: string): Map<string, Uint8Array> {
  return new Map(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(`${dir}/${f}`))]));
}

function withConfig(files: Map<string, Uint8Array>, edit: (c: Record<string, any>) => void): Map<string, Uint8Array> {
  const c = JSON.parse(new TextDecoder().decode(files.get('config.json')));
  edit(c);
  return new Map([...files, ['config.json', new TextEncoder().encode(JSON.stringify(c))]]);
}

/** Rewrites one safetensors file through `edit` on its tensor list. */
async function rewrite(files: Map<string, Uint8Array>, name: string, edit: (t: TensorData[]) => TensorData[]): Promise<Map<string, Uint8Array>> {
  const f = await SafetensorsFile.open(bufferSource(files.get(name)!), name);
  const tensors: TensorData[] = [];
  for (const info of f.tensors.values()) tensors.push({ name: info.name, dtype: info.dtype, shape: info.shape, data: await f.read(info.name) });
  return new Map([...files, [name, concatChunks(serializeSafetensors(edit(tensors)))]]);
}

/** Every tensor of the BF16 original, checked against the DF11 model (decoded on the CPU). */
async function expectBitExact(df11Dir: string, originalDir: string): Promise<void> {
  const model = await openModel(directoryFiles(df11Dir));
  expect(model.format).toBe('df11');
  const ref = readReferenceTensors(`${originalDir}/model.safetensors`);
  const checked = new Set<string>();
  for (const unitName of model.unitNames) {
    const unit = await model.readUnit(unitName);
    const bits = decodeUnit(unit);
    expect(bits.length).toBe(unit.signMantissa.length);
    for (const m of unit.matrices) {
      const r = ref.get(m.name)!;
      expect(r, m.name).toBeDefined();
      expect(m.shape).toEqual(r.shape);
      expect(Buffer.from(bits.buffer, bits.byteOffset + 2 * m.offset, 2 * m.size).equals(r.bytes), m.name).toBe(true);
      checked.add(m.name);
    }
  }
  for (const [name, r] of ref) {
    const loc = model.locate(name);
    expect(loc, name).toBeDefined();
    if (loc!.kind === 'tensor') {
      const t = await model.readTensor(name, 'BF16');
      expect(Buffer.from(t.data).equals(r.bytes), name).toBe(true);
      checked.add(name);
    }
  }
  expect(checked.size).toBe(ref.size);
}

describe('official DF11 directories', () => {
  it('stories-15m decodes bit-exact to models/stories-15m', async () => {
    await expectBitExact('test/fixtures/official-df11/stories-15m', 'models/stories-15m');
    const model = await openModel(directoryFiles('test/fixtures/official-df11/stories-15m'));
    expect(model.unitNames).toEqual(['lm_head', 'model.embed_tokens', ...Array.from({ length: 8 }, (_, i) => `model.layers.${i}`)]);
    const q = model.locate('model.layers.3.mlp.down_proj.weight');
    expect(q).toEqual({ kind: 'df11', unit: 'model.layers.3', matrix: { name: 'model.layers.3.mlp.down_proj.weight', shape: [384, 1024], offset: 1179648, size: 393216 } });
  });

  it('tiny-qwen3 decodes bit-exact; its stored tied head resolves to the embedding', async () => {
    await expectBitExact('test/fixtures/official-df11/tiny-qwen3', 'test/fixtures/hf/tiny-qwen3');
    const model = await openModel(directoryFiles('test/fixtures/official-df11/tiny-qwen3'));
    expect(model.locate('lm_head.weight')).toMatchObject({ kind: 'df11', unit: 'model.embed_tokens' });
    expect(model.tensorNames).not.toContain('lm_head.weight');
    expect(model.locate('model.layers.1.self_attn.q_norm.weight')).toEqual({ kind: 'tensor', name: 'model.layers.1.self_attn.q_norm.weight', dtype: 'BF16', shape: [32] });
    expect(await codeOf(model.readTensor('model.embed_tokens.weight'))).toBe('missing-tensor');
  });
});

describe('HF BF16 directories', () => {
  it('locates every tensor; a tied head reads as the embedding', async () => {
    const model = await openModel(directoryFiles('models/stories-micro'));
    expect(model.format).toBe('bf16');
    expect(model.unitNames).toEqual([]);
    const ref = readReferenceTensors('models/stories-micro/model.safetensors');
    expect(new Set(model.tensorNames)).toEqual(new Set(ref.keys()));
    const head = await model.readTensor('lm_head.weight', 'BF16');
    expect([...asUint16(head.data)]).toEqual([...refBits(ref.get('model.embed_tokens.weight')!)]);
    expect(model.locate('lm_head.weight')).toMatchObject({ kind: 'tensor', name: 'model.embed_tokens.weight', shape: [4096, 96] });
    expect(model.locate('model.layers.2.mlp.up_proj.weight')).toBeUndefined();
    expect(await codeOf(model.readTensor('model.norm.weight', 'F32'))).toBe('dtype');
  });

  it('reads a sharded model through model.safetensors.index.json', async () => {
    const files = loadDir('models/stories-micro');
    const whole = await SafetensorsFile.open(bufferSource(files.get('model.safetensors')!), 'whole');
    const shards: TensorData[][] = [[], []];
    const weightMap: Record<string, string> = {};
    let i = 0;
    for (const info of whole.tensors.values()) {
      shards[i % 2]!.push({ name: info.name, dtype: info.dtype, shape: info.shape, data: await whole.read(info.name) });
      weightMap[info.name] = `model-0000${(i % 2) + 1}-of-00002.safetensors`;
      i++;
    }
    files.delete('model.safetensors');
    files.set('model-00001-of-00002.safetensors', concatChunks(serializeSafetensors(shards[0]!)));
    files.set('model-00002-of-00002.safetensors', concatChunks(serializeSafetensors(shards[1]!)));
    files.set('model.safetensors.index.json', new TextEncoder().encode(JSON.stringify({ metadata: {}, weight_map: weightMap })));
    const model = await openModel(memoryFiles(files));
    const ref = readReferenceTensors('models/stories-micro/model.safetensors');
    for (const [name, r] of ref) expect(Buffer.from((await model.readTensor(name)).data).equals(r.bytes), name).toBe(true);
    // A tensor in two shards is an error.
    files.set('model-00002-of-00002.safetensors', files.get('model-00001-of-00002.safetensors')!);
    expect(await codeOf(openModel(memoryFiles(files)))).toBe('safetensors-header');
  });
});

describe('bad DF11 directories', () => {
  const official = () => loadDir('test/fixtures/official-df11/tiny-qwen3');

  it('rejects other thread geometries', async () => {
    const tpb = withConfig(official(), (c) => (c.dfloat11_config.threads_per_block = [256]));
    expect(await codeOf(openModel(memoryFiles(tpb)))).toBe('unsupported-architecture');
    const bpt = withConfig(official(), (c) => (c.dfloat11_config.bytes_per_thread = 4));
    expect(await codeOf(openModel(memoryFiles(bpt)))).toBe('unsupported-architecture');
  });

  it('rejects a config whose shapes disagree with the stored weights', async () => {
    const files = withConfig(official(), (c) => (c.intermediate_size = 150));
    expect(await codeOf(openModel(memoryFiles(files)))).toBe('corrupt-stream');
  });

  it('rejects split_positions that disagree with the shapes', async () => {
    const files = await rewrite(official(), 'model_layers_0.safetensors', (ts) =>
      ts.map((t) => (t.name.endsWith('.split_positions') ? { ...t, data: new Uint8Array(new BigInt64Array([8192n, 12288n, 16000n, 24576n, 34816n, 45056n]).buffer) } : t)),
    );
    const model = await openModel(memoryFiles(files));
    expect(await codeOf(model.readUnit('model.layers.0'))).toBe('corrupt-stream');
    expect(await codeOf(model.readUnit('model.layers.1'))).toBe('ok');
  });

  it('rejects a unit with a missing part, or matching no pattern', async () => {
    const noGaps = await rewrite(official(), 'model_layers_1.safetensors', (ts) => ts.filter((t) => !t.name.endsWith('.gaps')));
    expect(await codeOf(openModel(memoryFiles(noGaps)))).toBe('missing-tensor');
    const noPattern = withConfig(official(), (c) => delete c.dfloat11_config.pattern_dict['model\\.embed_tokens']);
    expect(await codeOf(openModel(memoryFiles(noPattern)))).toBe('config');
  });

  it('rejects unsupported architectures and non-DF11 dtypes', async () => {
    const moe = withConfig(official(), (c) => (c.model_type = 'qwen3_5_moe_text'));
    expect(await codeOf(openModel(memoryFiles(moe)))).toBe('unsupported-architecture');
    const wide = await rewrite(official(), 'model_embed_tokens.safetensors', (ts) =>
      ts.map((t) => (t.name.endsWith('.gaps') ? { ...t, dtype: 'I16', shape: [t.data.length / 2] } : t)),
    );
    const model = await openModel(memoryFiles(wide));
    expect(await codeOf(model.readUnit('model.embed_tokens'))).toBe('dtype');
  });

  it('reads Gemma 3 multimodal checkpoints: language_model.* names, vision tower skipped, DF11 units under either name', async () => {
    const plain = await openModel(directoryFiles(GEMMA3_TEXT_FIXTURE));
    const bf16 = await openModel(memoryFiles(await gemma3Multimodal('bf16')));
    expect(bf16.spec).toEqual(plain.spec);
    expect([...bf16.tensorNames].sort()).toEqual([...plain.tensorNames].sort());
    const q = 'model.layers.5.self_attn.q_proj.weight';
    expect((await bf16.readTensor(q)).data).toEqual((await plain.readTensor(q)).data);
    const df11 = await openModel(memoryFiles(await gemma3Multimodal('df11')));
    expect(df11.format).toBe('df11');
    expect(df11.unitNames).toEqual(['model.embed_tokens', ...Array.from({ length: 7 }, (_, i) => `model.layers.${i}`)]);
    const unit = await df11.readUnit('model.layers.5');
    const m = unit.matrices.find((x) => x.name === q)!;
    expect([...decodeUnit(unit).subarray(m.offset, m.offset + m.size)]).toEqual([...asUint16((await plain.readTensor(q)).data)]);
  });
  it('reads Qwen3.5 multimodal checkpoints: model.language_model.* names, the vision tower and MTP weights skipped', async () => {
    const dir = 'test/fixtures/hf/tiny-qwen3-5-text';
    const plain = await openModel(directoryFiles(dir));
    const file = await SafetensorsFile.open(bufferSource(new Uint8Array(readFileSync(`${dir}/model.safetensors`))), 'model.safetensors');
    const tensors: TensorData[] = [];
    for (const info of file.tensors.values()) {
      const name = info.name.startsWith('model.') ? `model.language_model.${info.name.slice('model.'.length)}` : info.name;
      tensors.push({ name, dtype: info.dtype, shape: info.shape, data: await file.read(info.name) });
    }
    const junk = { dtype: 'BF16' as const, shape: [2, 3], data: new Uint8Array(12).fill(0x7f) };
    tensors.push({ name: 'model.visual.patch_embed.proj.weight', ...junk }, { name: 'mtp.fc.weight', ...junk });
    const text = JSON.parse(readFileSync(`${dir}/config.json`, 'utf8')) as Record<string, unknown>;
    const config = { architectures: ['Qwen3_5ForConditionalGeneration'], model_type: 'qwen3_5', text_config: text, vision_config: { model_type: 'qwen3_5_vision' } };
    const files = new Map([
      ['config.json', new TextEncoder().encode(JSON.stringify(config))],
      ['model.safetensors', concatChunks(serializeSafetensors(tensors))],
    ]);
    const multimodal = await openModel(memoryFiles(files));
    expect(multimodal.spec).toEqual(plain.spec);
    expect([...multimodal.tensorNames].sort()).toEqual([...plain.tensorNames].sort());
    const w = 'model.layers.1.linear_attn.in_proj_qkv.weight';
    expect((await multimodal.readTensor(w)).data).toEqual((await plain.readTensor(w)).data);
  });
});
