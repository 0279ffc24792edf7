/**
 * model.safetensors.index.json: which safetensors files hold a sharded model's tensors. The index comes
 * from the network or a user's disk, so every part of it is checked: it is a JSON object whose weight_map
 * maps tensor names to plain file names (no path, no '.', no '..': a shard never lies outside the model
 * directory), each shard is present, and each tensor is in the shard the index names.
 */
import { Df11Error } from '../errors.ts';
import type { ModelFiles } from './byte-source.ts';

export const SHARD_INDEX = 'model.safetensors.index.json';

/** A shard name is a plain `*.safetensors` file name in the model directory itself. */
export function isShardName(name: unknown): name is string {
  return (
    typeof name === 'string' &&
    name.endsWith('.safetensors') &&
    name !== '.safetensors' &&
    !/[/\\\0]/.test(name) &&
    name !== '.' &&
    name !== '..'
  );
}

/** A JSON file of the directory, parsed; unreadable or malformed JSON is Df11Error(code). */
export async function readJsonFile(files: ModelFiles, name: string, code: 'config'): Promise<unknown> {
  try {
    const source = await files.open(name);
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await source.read(0, source.size)));
  } catch (e) {
    if (e instanceof Df11Error) throw e;
    throw new Df11Error(code, `${files.location}/${name}: ${(e as Error).message}`, { cause: e });
  }
}

/** The index's tensor → shard map, validated against the directory listing. */
export async function readShardIndex(files: ModelFiles, listed: readonly string[]): Promise<Map<string, string>> {
  const where = `${files.location}/${SHARD_INDEX}`;
  const index = await readJsonFile(files, SHARD_INDEX, 'config');
  const weightMap = isObject(index) ? index.weight_map : undefined;
  if (!isObject(weightMap)) throw new Df11Error('config', `${where} has no weight_map object`);
  const present = new Set(listed);
  const out = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(weightMap)) {
    if (!isShardName(shard)) {
      throw new Df11Error('config', `${where}: tensor '${tensor}' is in ${JSON.stringify(shard)}, not a .safetensors file of the model directory`);
    }
    if (!present.has(shard)) throw new Df11Error('missing-tensor', `${where}: shard '${shard}' (holding '${tensor}') is not in the directory`);
    out.set(tensor, shard);
  }
  return out;
}

/** Every tensor of the index is in the shard it names (`shardOf` gives where it was found). */
export function checkShardIndex(weightMap: Map<string, string>, shardOf: (tensor: string) => string | undefined, location: string): void {
  for (const [tensor, shard] of weightMap) {
    const found = shardOf(tensor);
    if (found !== shard) {
      throw new Df11Error(
        'missing-tensor',
        `${location}/${SHARD_INDEX}: tensor '${tensor}' should be in ${shard}, ${found === undefined ? 'but no shard holds it' : `but it is in ${found}`}`,
      );
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
