/**
 * The DF11 layouts users download from the hub, rebuilt in memory from the official fixtures (the tensor
 * streams are the same from DFloat11 0.2.0 to 0.5.0; only the files around them differ):
 *  - `eightB`: lm_head and embed_tokens as their own units, model.safetensors holds only the final norm
 *    (Llama-3.1-8B style), with a v0.2.0 transformers-4.x config;
 *  - `qwen3FourB`: layers compressed, BF16 embed_tokens in model.safetensors, tied head (Qwen3-4B style);
 *  - `withBf16Index`: any of them plus the BF16 original's model.safetensors.index.json;
 *  - `singleFile`: save_single_file output, every unit in one model.safetensors;
 *  - `pickleRepo`: a v0.1 release (layer_N.pkl, decode.ptx).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { bufferSource } from '../src/format/byte-source.ts';
import { concatChunks, SafetensorsFile, serializeSafetensors, type TensorData } from '../src/format/safetensors.ts';

export type Files = Map<string, Uint8Array>;

export const OFFICIAL = 'test/fixtures/official-df11';

export function loadDir(dir: string): Files {
  return new Map(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(`${dir}/${f}`))]));
}

const json = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v, null, 2));
const parse = (b: Uint8Array): Record<string, any> => JSON.parse(new TextDecoder().decode(b));

/** Every tensor of a safetensors file. */
export async function tensorsOf(data: Uint8Array, name = 'file'): Promise<TensorData[]> {
  const f = await SafetensorsFile.open(bufferSource(data), name);
  const out: TensorData[] = [];
  for (const info of f.tensors.values()) out.push({ name: info.name, dtype: info.dtype, shape: info.shape, data: await f.read(info.name) });
  return out;
}

const safetensors = (tensors: TensorData[]): Uint8Array => concatChunks(serializeSafetensors(tensors));

/**
 * A config as DFloat11 0.2.0 wrote it with transformers 4.x: `torch_dtype`, top-level `rope_theta`,
 * version "0.2.0", pattern dots unescaped, and `pattern` as the new pattern_dict.
 */
function v020Config(config: Record<string, any>, pattern?: Record<string, string[]>): Record<string, any> {
  const { dtype, rope_parameters, ...rest } = config;
  const df11 = config.dfloat11_config;
  const unescaped = Object.fromEntries(Object.entries(pattern ?? df11.pattern_dict).map(([k, v]) => [k.replace(/\\\./g, '.'), v]));
  return {
    ...rest,
    torch_dtype: dtype,
    rope_theta: rope_parameters.rope_theta,
    rope_scaling: null,
    transformers_version: '4.51.3',
    dfloat11_config: { version: '0.2.0', threads_per_block: [512], bytes_per_thread: 8, pattern_dict: unescaped },
  };
}

/** 8B style: stories-15m as published by DFloat11 0.2.0 (lm_head, embed_tokens and layers are units). */
export function eightB(): Files {
  const files = loadDir(`${OFFICIAL}/stories-15m`);
  files.set('config.json', json(v020Config(parse(files.get('config.json')!))));
  return files;
}

/** tiny-qwen3 as published by DFloat11 0.2.0 (embed_tokens and layers are units, tied head). */
export function tinyQwen3(): Files {
  const files = loadDir(`${OFFICIAL}/tiny-qwen3`);
  files.set('config.json', json(v020Config(parse(files.get('config.json')!))));
  return files;
}

/** Qwen3-4B style: tiny-qwen3 with only the layers compressed; BF16 embedding in model.safetensors; tied head. */
export function qwen3FourB(): Promise<Files> {
  return layersOnly(loadDir(`${OFFICIAL}/tiny-qwen3`), 'test/fixtures/hf/tiny-qwen3/model.safetensors');
}

/**
 * A tied DF11 directory (embedding and layer units) made Qwen3-4B style, with a v0.2.0 config: only the
 * layers stay units; model.safetensors holds the BF16 embedding (from `originalPath`) and the final norm.
 */
export async function layersOnly(files: Files, originalPath: string): Promise<Files> {
  const out = new Map(files);
  const config = parse(out.get('config.json')!);
  const layers = Object.fromEntries(Object.entries(config.dfloat11_config.pattern_dict as Record<string, string[]>).filter(([k]) => k.includes('layers')));
  out.set('config.json', json(v020Config(config, layers)));
  out.delete('model_embed_tokens.safetensors');
  const original = await tensorsOf(readFileSync(originalPath));
  const keep = new Set(['model.embed_tokens.weight', 'model.norm.weight']);
  out.set('model.safetensors', safetensors(original.filter((t) => keep.has(t.name))));
  return out;
}

/** Adds the BF16 original's model.safetensors.index.json (which names none of the DF11 files). */
export function withBf16Index(files: Files, bf16Names: readonly string[]): Files {
  const weightMap = Object.fromEntries(bf16Names.map((n, i) => [n, `model-0000${(i % 2) + 1}-of-00002.safetensors`]));
  return new Map([...files, ['model.safetensors.index.json', json({ metadata: { total_size: 1 }, weight_map: weightMap })]]);
}

/** save_single_file: every tensor of every .safetensors file in one model.safetensors. */
export async function singleFile(files: Files): Promise<Files> {
  const out: Files = new Map();
  const tensors: TensorData[] = [];
  for (const [name, data] of files) {
    if (name.endsWith('.safetensors')) tensors.push(...(await tensorsOf(data, name)));
    else out.set(name, data);
  }
  out.set('model.safetensors', safetensors(tensors));
  return out;
}

/** A DFloat11 v0.1 release: the HF config, pickled layers and the CUDA decoder. */
export function pickleRepo(): Files {
  const config = parse(readFileSync(`${OFFICIAL}/stories-15m/config.json`));
  delete config.dfloat11_config;
  const files: Files = new Map([
    ['config.json', json(config)],
    ['decode.ptx', new TextEncoder().encode('.version 7.0\n.target sm_80\n')],
  ]);
  for (let i = 0; i < 8; i++) files.set(`layer_${i}.pkl`, new Uint8Array([0x80, 0x04, 0x95]));
  return files;
}

/** A fetch over `files` under `dirUrl`: X-Linked-Size and Content-Length, single Range requests, 404 for anything absent. */
export function hubFetch(files: Files, dirUrl: string, onRequest?: (url: string, init?: RequestInit) => void) {
  return async (url: string, init?: RequestInit): Promise<Response> => {
    onRequest?.(url, init);
    if (!url.startsWith(dirUrl)) return new Response('', { status: 404 });
    const data = files.get(url.slice(dirUrl.length));
    if (!data) return new Response('not found', { status: 404 });
    const headers: Record<string, string> = { 'x-linked-size': String(data.length), 'content-type': 'application/octet-stream' };
    const range = /^bytes=(\d+)-(\d*)$/.exec(new Headers(init?.headers).get('range') ?? '');
    let body = data;
    if (range) {
      const end = range[2] === '' ? data.length : Math.min(Number(range[2]) + 1, data.length);
      body = data.subarray(Number(range[1]), end);
      headers['content-range'] = `bytes ${range[1]}-${end - 1}/${data.length}`;
    }
    headers['content-length'] = String(body.length);
    return new Response(init?.method === 'HEAD' ? null : (body.slice() as Uint8Array<ArrayBuffer>), { status: range ? 206 : 200, headers });
  };
}
