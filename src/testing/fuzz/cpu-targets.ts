/**
 * CPU fuzz targets (Node: the bases are read from the repository). Each builds one mutated input from
 * a seed, runs the code under test on it and says what happened: 'typed' (a Df11Error), 'identical' (the
 * same result as the undamaged input) or 'silent' (accepted, with another result). Any other exception
 * propagates: the runner classifies it as 'exception'.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDf11Error } from '../../errors.ts';
import { bufferSource } from '../../format/byte-source.ts';
import { compressModel, decompressModel } from '../../format/compress-model.ts';
import { parameterShapes, specFromConfig } from '../../format/config.ts';
import { decodeUnit } from '../../format/df11-cpu-decoder.ts';
import type { Df11Unit } from '../../format/df11-types.ts';
import { memoryFiles, memorySink } from '../../format/memory-files.ts';
import { openModel } from '../../format/model-reader.ts';
import { concatChunks, SafetensorsFile, serializeSafetensors, type TensorData } from '../../format/safetensors.ts';
import { readJsonFile } from '../../format/shard-index.ts';
import { planMemory } from '../../model/planner.ts';
import { rng } from '../random-weights.ts';
import { hostileValue, int, mutateBytes, mutateJson, pick, type Rng } from './mutate.ts';
import { baseUnits, classifyDecoded, cpuDecode, unitCase } from './unit-cases.ts';

export type CaseOutcome = 'typed' | 'identical' | 'silent';

export interface FuzzTarget {
  name: string;
  run(seed: number): Promise<CaseOutcome>;
}

type Files = Map<string, Uint8Array>;

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const json = (b: Uint8Array): unknown => JSON.parse(new TextDecoder().decode(b));

function loadDir(dir: string): Files {
  return new Map(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
}

function sameFiles(a: Files, b: Files): boolean {
  if (a.size !== b.size) return false;
  for (const [name, bytes] of a) {
    const other = b.get(name);
    if (!other || other.length !== bytes.length || Buffer.compare(bytes, other) !== 0) return false;
  }
  return true;
}

/** Runs `f`; a Df11Error is 'typed', a result equal to `base` is 'identical', any other 'silent'. */
async function classify<T>(f: () => Promise<T>, same: (got: T) => boolean): Promise<CaseOutcome> {
  let got: T;
  try {
    got = await f();
  } catch (e) {
    if (isDf11Error(e)) return 'typed';
    throw e;
  }
  return same(got) ? 'identical' : 'silent';
}

/** Every tensor of a safetensors file (name → dtype, shape and bytes), as one comparable map. */
async function readAll(bytes: Uint8Array): Promise<Files> {
  const file = await SafetensorsFile.open(bufferSource(bytes), 'fuzz.safetensors');
  const out: Files = new Map();
  for (const info of file.tensors.values()) {
    out.set(`${info.name} ${info.dtype} ${info.shape}`, (await file.read(info.name)).slice());
  }
  return out;
}

/** The header region of a safetensors file: its JSON, or bytes of the prefix and header (and a little data). */
function mutateSafetensors(r: Rng, bytes: Uint8Array): Uint8Array {
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (r() < 0.5) return mutateBytes(r, bytes, 0, 8 + headerLength + 16);
  const header = json(bytes.subarray(8, 8 + headerLength)) as Record<string, unknown>;
  const mutated = text(JSON.stringify(mutateJson(r, header)));
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(mutated.length + (r() < 0.9 ? 0 : pick(r, [-1, 1, 8]))), true);
  const out = new Uint8Array(8 + mutated.length + bytes.length - 8 - headerLength);
  out.set(prefix);
  out.set(mutated, 8);
  out.set(bytes.subarray(8 + headerLength), 8 + mutated.length);
  return out;
}

function safetensorsTarget(): FuzzTarget {
  const r0 = rng(7);
  const tensors: TensorData[] = [
    { name: 'a.weight', dtype: 'BF16', shape: [3, 5], data: new Uint8Array(30).map(() => int(r0, 256)) },
    { name: 'b', dtype: 'F32', shape: [4], data: new Uint8Array(16).map(() => int(r0, 256)) },
    { name: 'c.split_positions', dtype: 'I64', shape: [2], data: new Uint8Array(16).map(() => int(r0, 256)) },
    { name: 'd', dtype: 'U8', shape: [7], data: new Uint8Array(7).map(() => int(r0, 256)) },
    { name: 'empty', dtype: 'U8', shape: [0], data: new Uint8Array(0) },
  ];
  const base = concatChunks(serializeSafetensors(tensors, { format: 'pt' }));
  let baseTensors: Files | undefined;
  return {
    name: 'safetensors',
    async run(seed) {
      baseTensors ??= await readAll(base);
      const input = mutateSafetensors(rng(seed), base);
      return classify(() => readAll(input), (got) => sameFiles(got, baseTensors!));
    },
  };
}

function configTarget(): FuzzTarget {
  const bases = [
    'models/stories-micro/config.json',
    'test/fixtures/configs/llama-3.1-8b.json',
    'test/fixtures/configs/llama-3.2-1b.json',
    'test/fixtures/configs/qwen3-8b.json',
    'test/fixtures/hf/tiny-qwen2/config.json',
    'test/fixtures/official-df11/tiny-qwen3/config.json',
    'test/fixtures/configs/qwen3.5-2b.json',
    'test/fixtures/hf/tiny-qwen3-5-text/config.json',
  ].map((p) => new Uint8Array(readFileSync(p)));
  const evaluate = (config: unknown): string => {
    const spec = specFromConfig(config);
    const plan = planMemory(spec, { mode: 'df11', budgetBytes: 2 ** 50 });
    return JSON.stringify([spec, plan.maxPositionEmbeddings, parameterShapes(spec).size]);
  };
  return {
    name: 'config',
    async run(seed) {
      const r = rng(seed);
      const base = pick(r, bases);
      const expected = evaluate(json(base));
      const input = r() < 0.7 ? text(JSON.stringify(mutateJson(r, json(base)))) : mutateBytes(r, base);
      const files = memoryFiles(new Map([['config.json', input]]), 'fuzz');
      return classify(async () => evaluate(await readJsonFile(files, 'config.json', 'config')), (got) => got === expected);
    },
  };
}

/** Every weight of a model directory, read and decoded (DF11 units on the CPU). */
async function readModel(files: Files): Promise<Files> {
  const model = await openModel(memoryFiles(files, 'fuzz'));
  const out: Files = new Map();
  for (const name of model.tensorNames) out.set(name, (await model.readTensor(name)).data.slice());
  for (const unit of model.unitNames) out.set(unit, new Uint8Array(decodeUnit(await model.readUnit(unit)).buffer));
  return out;
}

async function shardedMicro(): Promise<Files> {
  const files = loadDir('models/stories-micro');
  const whole = await SafetensorsFile.open(bufferSource(files.get('model.safetensors')!), 'whole');
  const shards: TensorData[][] = [[], [], []];
  const weightMap: Record<string, string> = {};
  let i = 0;
  for (const info of whole.tensors.values()) {
    shards[i % 3]!.push({ name: info.name, dtype: info.dtype, shape: info.shape, data: await whole.read(info.name) });
    weightMap[info.name] = `model-0000${(i % 3) + 1}-of-00003.safetensors`;
    i++;
  }
  files.delete('model.safetensors');
  shards.forEach((s, j) => files.set(`model-0000${j + 1}-of-00003.safetensors`, concatChunks(serializeSafetensors(s))));
  files.set('model.safetensors.index.json', text(JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap })));
  return files;
}

function indexTarget(): FuzzTarget {
  let base: Files | undefined;
  let expected: Files | undefined;
  const INDEX = 'model.safetensors.index.json';
  return {
    name: 'index',
    async run(seed) {
      base ??= await shardedMicro();
      expected ??= await readModel(base);
      const r = rng(seed);
      const index = base.get(INDEX)!;
      let mutated: Uint8Array;
      const op = r();
      if (op < 0.25) mutated = mutateBytes(r, index);
      else if (op < 0.75) {
        // hostile shard names and values in the weight map
        const doc = json(index) as { weight_map: Record<string, unknown> };
        const keys = Object.keys(doc.weight_map);
        for (let e = 1 + int(r, 3); e > 0; e--) {
          const key = pick(r, keys);
          const x = r();
          if (x < 0.4) doc.weight_map[key] = hostileValue(r);
          else if (x < 0.7) delete doc.weight_map[key];
          else doc.weight_map[key] = pick(r, ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors', 'model-00004-of-00003.safetensors']);
        }
        mutated = text(JSON.stringify(doc));
      } else mutated = text(JSON.stringify(mutateJson(r, json(index))));
      const files = new Map(base);
      files.set(INDEX, mutated);
      if (r() < 0.1) files.delete(`model-0000${1 + int(r, 3)}-of-00003.safetensors`);
      return classify(() => readModel(files), (got) => sameFiles(got, expected!));
    },
  };
}

function df11Target(): FuzzTarget {
  let bases: Df11Unit[] | undefined;
  const decodedBases = new Map<Df11Unit, Uint16Array>();
  return {
    name: 'df11',
    async run(seed) {
      bases ??= baseUnits();
      const { base, unit } = unitCase(bases, seed);
      if (!decodedBases.has(base)) decodedBases.set(base, decodeUnit(base));
      return classifyDecoded(cpuDecode(unit), decodedBases.get(base)!);
    },
  };
}

/** A whole directory damaged (a file's header or JSON, a file deleted or cut), then converted. */
function directoryTarget(): FuzzTarget {
  const dirs = {
    df11: loadDir('test/fixtures/official-df11/tiny-qwen3'),
    bf16: loadDir('test/fixtures/hf/tiny-llama-tied'),
  };
  const convert = async (kind: keyof typeof dirs, files: Files): Promise<Files> => {
    const out: Files = new Map();
    if (kind === 'df11') await decompressModel(memoryFiles(files, 'fuzz'), memorySink(out));
    else await compressModel(memoryFiles(files, 'fuzz'), memorySink(out));
    return out;
  };
  const expected = new Map<string, Files>();
  return {
    name: 'directory',
    async run(seed) {
      const r = rng(seed);
      const kind = r() < 0.6 ? 'df11' : 'bf16';
      const base = dirs[kind];
      if (!expected.has(kind)) expected.set(kind, await convert(kind, base));
      const files = new Map(base);
      // the files a conversion reads (generation_config.json is copied as is, reference.json ignored)
      const name = pick(r, [...files.keys()].filter((n) => n === 'config.json' || n.endsWith('.safetensors')).sort());
      const bytes = files.get(name)!;
      const op = r();
      if (op < 0.1) files.delete(name);
      else if (name.endsWith('.json')) files.set(name, op < 0.6 ? text(JSON.stringify(mutateJson(r, json(bytes)))) : mutateBytes(r, bytes));
      else if (op < 0.2) files.set(name, bytes.slice(0, int(r, bytes.length)));
      else files.set(name, mutateSafetensors(r, bytes));
      return classify(() => convert(kind, files), (got) => sameFiles(got, expected.get(kind)!));
    },
  };
}

/** The CPU targets, in the order cases are dealt to them (case seed s goes to target s % length). */
export function cpuTargets(): FuzzTarget[] {
  return [safetensorsTarget(), configTarget(), indexTarget(), df11Target(), directoryTarget()];
}
