/**
 * A Gemma 3 multimodal checkpoint made from the text-only tiny-gemma3-mixed fixture, laid out as HF and the
 * official DF11 gemma-3 repos store it: config `{ model_type: 'gemma3', text_config, vision_config }`,
 * weights under `language_model.model.*`, plus a vision-tower tensor the runtime must skip.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { bufferSource } from '../src/format/byte-source.ts';
import { compressModel } from '../src/format/compress-model.ts';
import { memorySink } from '../src/format/memory-files.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import { concatChunks, SafetensorsFile, serializeSafetensors, type TensorData } from '../src/format/safetensors.ts';

export const GEMMA3_TEXT_FIXTURE = 'test/fixtures/hf/tiny-gemma3-mixed';

/** The multimodal layout of the fixture: 'bf16' as HF saves it, 'df11' as the official compressor would. */
export async function gemma3Multimodal(format: 'bf16' | 'df11'): Promise<Map<string, Uint8Array>> {
  let files: Map<string, Uint8Array>;
  if (format === 'bf16') {
    files = new Map(readdirSync(GEMMA3_TEXT_FIXTURE).map((f) => [f, new Uint8Array(readFileSync(`${GEMMA3_TEXT_FIXTURE}/${f}`))]));
  } else {
    files = new Map();
    await compressModel(directoryFiles(GEMMA3_TEXT_FIXTURE), memorySink(files));
  }
  const out = new Map<string, Uint8Array>();
  for (const [name, data] of files) {
    if (!name.endsWith('.safetensors')) continue;
    const file = await SafetensorsFile.open(bufferSource(data), name);
    const tensors: TensorData[] = [];
    for (const info of file.tensors.values()) {
      const renamed = info.name.startsWith('model.') ? `language_model.${info.name}` : info.name;
      tensors.push({ name: renamed, dtype: info.dtype, shape: info.shape, data: await file.read(info.name) });
    }
    if (name === 'model.safetensors') {
      tensors.push({ name: 'vision_tower.vision_model.embeddings.patch_embedding.weight', dtype: 'BF16', shape: [2, 3], data: new Uint8Array(12).fill(0x7f) });
    }
    // DF11 unit files are named after the stored module (language_model.model.layers.0 → language_model_model_layers_0).
    out.set(name.startsWith('model_') ? `language_model_${name}` : name, concatChunks(serializeSafetensors(tensors)));
  }
  const { dfloat11_config: df11, ...text } = JSON.parse(new TextDecoder().decode(files.get('config.json'))) as Record<string, any>;
  const config: Record<string, unknown> = {
    architectures: ['Gemma3ForConditionalGeneration'],
    model_type: 'gemma3',
    dtype: text.dtype, // HF writes the dtype at the top level
    text_config: text,
    vision_config: { model_type: 'siglip_vision_model', hidden_size: 8 },
  };
  if (df11) {
    // The official pattern names the modules as stored.
    const pattern = Object.fromEntries(Object.entries(df11.pattern_dict as Record<string, string[]>).map(([k, v]) => [k.startsWith('model') ? `language_model\\.${k}` : k, v]));
    config.dfloat11_config = { ...df11, pattern_dict: pattern };
  }
  out.set('config.json', new TextEncoder().encode(JSON.stringify(config)));
  return out;
}
