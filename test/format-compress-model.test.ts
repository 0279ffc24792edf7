import { describe, expect, it } from 'vitest';
import { codeOf } from '../src/testing/error-code.ts';
import { compressModel, decompressModel } from '../src/format/compress-model.ts';
import { decodeUnit } from '../src/format/df11-cpu-decoder.ts';
import { expectUnitsDecodeTo } from './df11-checks.ts';
import { memoryFiles, memorySink } from '../src/format/memory-files.ts';
import { openModel } from '../src/format/model-reader.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import { SafetensorsFile } from '../src/format/safetensors.ts';
import { bufferSource } from '../src/format/byte-source.ts';
import { existsSync, readFileSync } from 'node:fs';
import { readReferenceTensors } from './format-reference.ts';

async function compressToMemory(dir: string, pattern?: Record<string, string[]>) {
  const files = new Map<string, Uint8Array>();
  const progress: string[] = [];
  const summary = await compressModel(directoryFiles(dir), memorySink(files), { pattern, onUnit: (p) => progress.push(`${p.index}/${p.count} ${p.unit}`) });
  return { files, summary, progress };
}

/** The compressed model holds every original tensor, bit for bit; decompressing gives the original tensors back. */
async function expectRoundTrip(dir: string): Promise<void> {
  const { files, summary, progress } = await compressToMemory(dir);
  const ref = readReferenceTensors(`${dir}/model.safetensors`);
  const model = await openModel(memoryFiles(files));
  expect(model.format).toBe('df11');
  expect(progress).toEqual(model.unitNames.map(() => expect.any(String)));
  expect((await expectUnitsDecodeTo(model, ref)).weights).toBe(summary.elements);
  // Every 2-D weight went into a unit; only 1-D parameters stay uncompressed.
  for (const name of model.tensorNames) expect(ref.get(name)!.shape.length, name).toBe(1);
  expect(summary.compressedBytes / (2 * summary.elements)).toBeLessThan(0.7);

  const out = new Map<string, Uint8Array>();
  await decompressModel(memoryFiles(files), memorySink(out));
  const back = await SafetensorsFile.open(bufferSource(out.get('model.safetensors')!), 'back');
  expect(new Set(back.tensors.keys())).toEqual(new Set(ref.keys()));
  for (const [name, r] of ref) {
    expect(back.tensors.get(name)!.shape).toEqual(r.shape);
    expect(Buffer.from(await back.read(name, 'BF16')).equals(r.bytes), name).toBe(true);
  }
  const config = JSON.parse(new TextDecoder().decode(out.get('config.json')));
  expect(config).toEqual(JSON.parse(readFileSync(`${dir}/config.json`, 'utf8')));
  for (const side of ['tokenizer.json', 'generation_config.json']) {
    if (existsSync(`${dir}/${side}`)) expect(out.get(side), side).toEqual(new Uint8Array(readFileSync(`${dir}/${side}`)));
  }
}

describe('compress → read → decompress', () => {
  it('stories-15m round-trips bit for bit', async () => {
    await expectRoundTrip('models/stories-15m');
  });

  it('stories-micro (tied) round-trips bit for bit', async () => {
    await expectRoundTrip('models/stories-micro');
  });

  it('tiny-qwen2 keeps its q/k/v biases in the layer files', async () => {
    await expectRoundTrip('test/fixtures/hf/tiny-qwen2');
    const { files } = await compressToMemory('test/fixtures/hf/tiny-qwen2');
    const layer = await SafetensorsFile.open(bufferSource(files.get('model_layers_1.safetensors')!), 'layer');
    expect([...layer.tensors.keys()].filter((n) => n.endsWith('.bias')).sort()).toEqual([
      'model.layers.1.self_attn.k_proj.bias',
      'model.layers.1.self_attn.q_proj.bias',
      'model.layers.1.self_attn.v_proj.bias',
    ]);
  });
});

describe('the written directory', () => {
  it('has the official layout and config', async () => {
    const { files } = await compressToMemory('models/stories-15m');
    const official = readFileSync('test/fixtures/official-df11/stories-15m/config.json', 'utf8');
    const ours = JSON.parse(new TextDecoder().decode(files.get('config.json')));
    expect(ours).toEqual(JSON.parse(official));
    const names = [...files.keys()].sort();
    const officialNames = ['config.json', 'generation_config.json', 'lm_head.safetensors', 'model.safetensors', 'model_embed_tokens.safetensors',
      ...Array.from({ length: 8 }, (_, i) => `model_layers_${i}.safetensors`), 'tokenizer.json', 'tokenizer_config.json'].sort();
    expect(names).toEqual(officialNames);
    const layer = await SafetensorsFile.open(bufferSource(files.get('model_layers_5.safetensors')!), 'layer');
    expect([...layer.tensors.keys()].sort()).toEqual(
      ['encoded_exponent', 'gaps', 'input_layernorm.weight', 'luts', 'output_positions', 'post_attention_layernorm.weight', 'sign_mantissa', 'split_positions']
        .map((s) => `model.layers.5.${s}`),
    );
    const rest = await SafetensorsFile.open(bufferSource(files.get('model.safetensors')!), 'rest');
    expect([...rest.tensors.keys()]).toEqual(['model.norm.weight']);
  });

  it('follows a custom pattern (attention and MLP as separate units)', async () => {
    const pattern = { 'model\\.layers\\.\\d+\\.self_attn': ['q_proj', 'k_proj', 'v_proj', 'o_proj'], 'model\\.layers\\.\\d+\\.mlp': ['gate_proj', 'up_proj', 'down_proj'] };
    const { files } = await compressToMemory('models/stories-micro', pattern);
    const model = await openModel(memoryFiles(files));
    expect(model.unitNames).toEqual(['model.layers.0.mlp', 'model.layers.0.self_attn', 'model.layers.1.mlp', 'model.layers.1.self_attn']);
    expect(model.locate('model.embed_tokens.weight')).toMatchObject({ kind: 'tensor' });
    const ref = readReferenceTensors('models/stories-micro/model.safetensors');
    const unit = await model.readUnit('model.layers.1.mlp');
    const bits = decodeUnit(unit);
    const down = unit.matrices[2]!;
    expect(down.name).toBe('model.layers.1.mlp.down_proj.weight');
    expect(Buffer.from(bits.buffer, bits.byteOffset + 2 * down.offset, 2 * down.size).equals(ref.get(down.name)!.bytes)).toBe(true);
  });

  it('refuses patterns naming missing weights, and DF11 input', async () => {
    const bad = { 'model\\.layers\\.\\d+': ['self_attn.q_proj', 'mlp.w3'] };
    expect(await codeOf(compressModel(directoryFiles('models/stories-micro'), memorySink(new Map()), { pattern: bad }))).toBe('missing-tensor');
    expect(await codeOf(compressModel(directoryFiles('test/fixtures/official-df11/tiny-qwen3'), memorySink(new Map())))).toBe('bad-request');
  });

  it('refuses weights DF11 cannot code (Inf)', async () => {
    const { files } = await compressToMemory('test/fixtures/hf/tiny-llama-tied');
    // Decompress, poison one weight with +Inf, and try again.
    const out = new Map<string, Uint8Array>();
    await decompressModel(memoryFiles(files), memorySink(out));
    const st = out.get('model.safetensors')!;
    const f = await SafetensorsFile.open(bufferSource(st), 'st');
    const info = f.tensors.get('model.layers.0.mlp.up_proj.weight')!;
    const poisoned = Uint8Array.from(st);
    poisoned[info.offset + 10] = 0x80; // bits 0x7f80 (little-endian) = +Inf
    poisoned[info.offset + 11] = 0x7f;
    out.set('model.safetensors', poisoned);
    expect(await codeOf(compressModel(memoryFiles(out), memorySink(new Map())))).toBe('unencodable');
  });
});
