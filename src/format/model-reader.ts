/**
 * Opens a model directory, HF BF16 (single or sharded safetensors) or official DFloat11, behind one
 * interface: where each weight lives (a DF11 unit or a plain tensor), and lazy reads of either.
 * Only headers are read on open; tensor data is read when asked for.
 */
import { Df11Error } from '../errors.ts';
import { readJson, type ModelFiles } from './byte-source.ts';
import { specFromConfig, textWeightName, weightShape } from './config.ts';
import { validateUnit } from './df11-cpu-decoder.ts';
import type { Df11Matrix, Df11Unit } from './df11-types.ts';
import type { ModelSpec } from './model-spec.ts';
import { checkRequiredTensors } from './required-tensors.ts';
import { checkShardIndex, readShardIndex, SHARD_INDEX } from './shard-index.ts';
import { asUint32, int64ToNumbers, SafetensorsFile, type Dtype, type TensorInfo } from './safetensors.ts';

export interface ModelWeights {
  readonly spec: ModelSpec;
  readonly config: Record<string, unknown>;
  readonly format: 'df11' | 'bf16';
  /** DF11 unit names in natural order (model.layers.2 before model.layers.10); [] for bf16. */
  readonly unitNames: string[];
  /** Names of the plain (uncompressed) tensors, without a stored tied head (it resolves to the embedding). */
  readonly tensorNames: string[];
  /** Loads that unit's arrays only. */
  readUnit(name: string): Promise<Df11Unit>;
  /** Where a weight lives. For tied heads, 'lm_head.weight' resolves to the embedding. */
  locate(tensorName: string): WeightLocation | undefined;
  /** An uncompressed tensor's raw bytes (norms, biases, BF16 matrices); dtype checked if given. */
  readTensor(name: string, dtype?: Dtype): Promise<{ dtype: Dtype; shape: number[]; data: Uint8Array }>;
}

export type WeightLocation =
  | { kind: 'df11'; unit: string; matrix: Df11Matrix }
  | { kind: 'tensor'; name: string; dtype: Dtype; shape: number[] };

/** The `dfloat11_config` block of a DF11 config.json. */
export interface Df11Config {
  version: string;
  threads_per_block: [512];
  bytes_per_thread: 8;
  pattern_dict: Record<string, string[]>;
}

/** The six tensors of a unit, by suffix. */
export const UNIT_PARTS = [
  'encoded_exponent',
  'sign_mantissa',
  'luts',
  'gaps',
  'output_positions',
  'split_positions',
] as const;

interface Located {
  file: SafetensorsFile;
  info: TensorInfo;
}

export async function openModel(files: ModelFiles): Promise<ModelWeights> {
  const listed = await files.list().catch((e: unknown) => {
    throw new Df11Error('config', `${files.location}: cannot list the model directory (${(e as Error).message})`, { cause: e });
  });
  if (!listed.includes('config.json')) throw new Df11Error('config', `${files.location}: no config.json`);
  const config = await readJson<Record<string, unknown>>(files, 'config.json').catch((e: unknown) => {
    throw e instanceof Df11Error ? e : new Df11Error('config', `${files.location}/config.json: ${(e as Error).message}`, { cause: e });
  });
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new Df11Error('config', `${files.location}/config.json is not a JSON object`);
  }
  rejectPickleLayout(listed, files.location);
  const spec = specFromConfig(config);
  const df11 = config.dfloat11_config === undefined ? undefined : parseDf11Config(config.dfloat11_config);
  // The official DF11 loader opens every *.safetensors and never reads an index; repos may still carry
  // the BF16 original's model.safetensors.index.json, which names none of the DF11 files.
  const tensors = await indexTensors(files, listed, config);
  const units = df11 ? findUnits(spec, df11, tensors, files.location) : new Map<string, UnitEntry>();
  const unitTensor = new Set<string>();
  for (const name of units.keys()) for (const part of UNIT_PARTS) unitTensor.add(`${name}.${part}`);
  const tiedHead = (n: string): boolean => spec.tieWordEmbeddings && n === 'lm_head.weight';
  const plain = [...tensors.keys()].filter((n) => !unitTensor.has(n) && !tiedHead(n));
  const matrixIndex = new Map<string, { unit: string; matrix: Df11Matrix }>();
  for (const [unit, entry] of units) for (const matrix of entry.matrices) matrixIndex.set(matrix.name, { unit, matrix });

  const resolve = (name: string): string => (tiedHead(name) ? 'model.embed_tokens.weight' : name);

  const locate = (tensorName: string): WeightLocation | undefined => {
    const name = resolve(tensorName);
    const m = matrixIndex.get(name);
    if (m) return { kind: 'df11', unit: m.unit, matrix: m.matrix };
    const t = tensors.get(name);
    if (t && !unitTensor.has(name)) return { kind: 'tensor', name, dtype: t.info.dtype, shape: t.info.shape };
    return undefined;
  };
  checkRequiredTensors(spec, locate, files.location);

  return {
    spec,
    config,
    format: df11 ? 'df11' : 'bf16',
    unitNames: [...units.keys()],
    tensorNames: plain,
    locate,
    async readUnit(name) {
      const entry = units.get(name);
      if (!entry) throw new Df11Error('missing-tensor', `${files.location}: no DF11 unit '${name}'`);
      return readUnit(name, entry);
    },
    async readTensor(tensorName, dtype) {
      const name = resolve(tensorName);
      const t = tensors.get(name);
      if (!t || unitTensor.has(name)) {
        const why = matrixIndex.has(name) ? ` (it is DF11-compressed in unit '${matrixIndex.get(name)!.unit}')` : '';
        throw new Df11Error('missing-tensor', `${files.location}: no uncompressed tensor '${name}'${why}`);
      }
      return { dtype: t.info.dtype, shape: t.info.shape, data: await t.file.read(t.info.name, dtype) };
    },
  };
}

/** DFloat11 v0.1 releases are pickles and a CUDA module (layer_N.pkl, decode.ptx), without safetensors. */
export function isPickleLayout(names: readonly string[]): boolean {
  return names.some((n) => n === 'decode.ptx' || /^layer_\d+\.pkl$/.test(n)) && !names.some((n) => n.endsWith('.safetensors'));
}

function rejectPickleLayout(names: readonly string[], location: string): void {
  if (isPickleLayout(names)) throw unsupportedPickles(location);
}

export function unsupportedPickles(location: string): Df11Error {
  return new Df11Error(
    'unsupported-format',
    `${location} is a DFloat11 v0.1 release (layer_N.pkl pickles and decode.ptx), which cannot be read here: ` +
      'use a v0.2+ DF11 release (safetensors) or the BF16 model (it is compressed on load)',
  );
}

/**
 * Every tensor of the directory by the name the runtime uses (textWeightName: Gemma 3 multimodal
 * checkpoints lose their `language_model` prefix, their vision weights are left out). Sharded models list
 * their shards in model.safetensors.index.json (DF11 directories aside: the official loader never reads an
 * index); otherwise (single file, DF11 directories) every top-level .safetensors file is read.
 */
async function indexTensors(files: ModelFiles, listed: string[], config: Record<string, unknown>): Promise<Map<string, Located>> {
  const names = listed.filter((n) => !n.includes('/') && !n.includes('\\'));
  let shardNames = names.filter((n) => n.endsWith('.safetensors'));
  const useIndex = config.dfloat11_config === undefined && names.includes(SHARD_INDEX);
  const fullMap = useIndex ? await readShardIndex(files, names) : undefined;
  // Only the shards holding weights the runtime reads (a Gemma 3 shard of vision weights is never needed).
  const weightMap = fullMap && new Map([...fullMap].filter(([name]) => textWeightName(config, name) !== undefined));
  if (weightMap) shardNames = [...new Set(weightMap.values())].sort();
  if (shardNames.length === 0) throw new Df11Error('missing-tensor', `${files.location}: no .safetensors files`);
  const out = new Map<string, Located>();
  const shardOf = new Map<string, string>();
  for (const shard of shardNames) {
    const file = await SafetensorsFile.open(await files.open(shard), `${files.location}/${shard}`);
    for (const [stored, info] of file.tensors) {
      const name = textWeightName(config, stored);
      if (name === undefined) continue;
      const prev = out.get(name);
      if (prev) {
        throw new Df11Error('safetensors-header', `tensor '${name}' is in both ${prev.file.fileName} and ${file.fileName}`);
      }
      out.set(name, { file, info });
      shardOf.set(stored, shard);
    }
  }
  if (weightMap) checkShardIndex(weightMap, (t) => shardOf.get(t), files.location);
  return out;
}

export function parseDf11Config(value: unknown): Df11Config {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Df11Error('config', 'dfloat11_config is not an object');
  }
  const c = value as Record<string, unknown>;
  const tpb = c.threads_per_block;
  if (!Array.isArray(tpb) || tpb.length !== 1 || tpb[0] !== 512) {
    throw new Df11Error('unsupported-architecture', `dfloat11_config.threads_per_block ${JSON.stringify(tpb)} is not supported (only [512])`);
  }
  if (c.bytes_per_thread !== 8) {
    throw new Df11Error('unsupported-architecture', `dfloat11_config.bytes_per_thread ${JSON.stringify(c.bytes_per_thread)} is not supported (only 8)`);
  }
  const pattern = c.pattern_dict;
  if (typeof pattern !== 'object' || pattern === null || Array.isArray(pattern)) {
    throw new Df11Error('config', 'dfloat11_config.pattern_dict is not an object');
  }
  for (const [regex, subs] of Object.entries(pattern)) {
    if (!Array.isArray(subs) || !subs.every((s) => typeof s === 'string')) {
      throw new Df11Error('config', `dfloat11_config.pattern_dict['${regex}'] is not a list of names`);
    }
  }
  return {
    version: typeof c.version === 'string' ? c.version : 'unknown',
    threads_per_block: [512],
    bytes_per_thread: 8,
    pattern_dict: pattern as Record<string, string[]>,
  };
}

/** Compiles pattern_dict regexes for a full match on a module name. */
export function compilePattern(pattern: Record<string, string[]>): Array<{ regex: RegExp; subs: string[] }> {
  return Object.entries(pattern).map(([source, subs]) => {
    try {
      return { regex: new RegExp(`^(?:${source})$`), subs };
    } catch (e) {
      throw new Df11Error('config', `pattern_dict regex '${source}' is invalid`, { cause: e });
    }
  });
}

/** The full tensor names of a unit's matrices, in concatenation order. */
export function unitMatrixNames(unit: string, subs: string[]): string[] {
  return subs.length === 0 ? [`${unit}.weight`] : subs.map((s) => `${unit}.${s}.weight`);
}

interface UnitEntry {
  parts: Record<(typeof UNIT_PARTS)[number], Located>;
  matrices: Df11Matrix[];
}

function findUnits(spec: ModelSpec, df11: Df11Config, tensors: Map<string, Located>, location: string): Map<string, UnitEntry> {
  const patterns = compilePattern(df11.pattern_dict);
  const suffix = '.encoded_exponent';
  const names = [...tensors.keys()].filter((n) => n.endsWith(suffix)).map((n) => n.slice(0, -suffix.length));
  const units = new Map<string, UnitEntry>();
  for (const unit of names.sort(compareNatural)) {
    const parts = {} as UnitEntry['parts'];
    for (const part of UNIT_PARTS) {
      const t = tensors.get(`${unit}.${part}`);
      if (!t) throw new Df11Error('missing-tensor', `${location}: DF11 unit '${unit}' has no '${part}' tensor`);
      parts[part] = t;
    }
    // The pattern may name the module as stored (e.g. language_model.model.layers.N) or as the runtime does.
    const stored = parts.encoded_exponent.info.name.slice(0, -suffix.length);
    const match = patterns.find((p) => p.regex.test(unit) || p.regex.test(stored));
    if (!match) throw new Df11Error('config', `${location}: DF11 unit '${unit}' matches no pattern_dict entry`);
    let offset = 0;
    const matrices = unitMatrixNames(unit, match.subs).map((name) => {
      const shape = weightShape(spec, name);
      if (!shape) throw new Df11Error('config', `${location}: unit '${unit}' holds '${name}', unknown to a ${spec.architecture} model`);
      const size = shape.reduce((a, b) => a * b, 1);
      const matrix: Df11Matrix = { name, shape, offset, size };
      offset += size;
      return matrix;
    });
    const sm = parts.sign_mantissa.info;
    const sp = parts.split_positions.info;
    if (sm.byteLength !== offset || sp.shape.length !== 1 || sp.shape[0] !== matrices.length - 1) {
      throw new Df11Error(
        'corrupt-stream',
        `${location}: unit '${unit}' stores ${sm.byteLength} weights in ${sp.shape[0] ?? '?'}+1 matrices; the config implies ${offset} in ${matrices.length}`,
      );
    }
    units.set(unit, { parts, matrices });
  }
  return units;
}

async function readUnit(name: string, entry: UnitEntry): Promise<Df11Unit> {
  const read = (part: (typeof UNIT_PARTS)[number], dtype: Dtype): Promise<Uint8Array> => {
    const { file, info } = entry.parts[part];
    return file.read(info.name, dtype);
  };
  const lutsInfo = entry.parts.luts.info;
  if (lutsInfo.shape.length !== 2 || lutsInfo.shape[1] !== 256) {
    throw new Df11Error('corrupt-stream', `unit '${name}': luts has shape [${lutsInfo.shape.join(', ')}], expected [k, 256]`);
  }
  const [encodedExponent, signMantissa, luts, gaps, outputPositions, splitBytes] = await Promise.all([
    read('encoded_exponent', 'U8'),
    read('sign_mantissa', 'U8'),
    read('luts', 'U8'),
    read('gaps', 'U8'),
    read('output_positions', 'U8'),
    read('split_positions', 'I64'),
  ]);
  if (outputPositions.byteLength % 4 !== 0) {
    throw new Df11Error('corrupt-stream', `unit '${name}': output_positions has ${outputPositions.byteLength} bytes, not a multiple of 4`);
  }
  const unit: Df11Unit = {
    name,
    encodedExponent,
    signMantissa,
    luts,
    gaps,
    outputPositions: asUint32(outputPositions),
    splitPositions: int64ToNumbers(splitBytes),
    matrices: entry.matrices.map((m) => ({ ...m, shape: [...m.shape] })),
  };
  validateUnit(unit);
  return unit;
}

/** Compare names with digit runs as numbers: model.layers.2 < model.layers.10. */
export function compareNatural(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}
