/**
 * Whole-model conversion: an HF BF16 directory → the official DF11 layout (compressModel), and back
 * (decompressModel). Works on ModelFiles and a FileSink, so it runs the same on disk (CLI) and in memory
 * (compress on load in the browser). Units are encoded one at a time, or several at once by a worker pool
 * (`encoder`), and each is written as soon as it is encoded.
 */
import { Df11Error } from '../errors.ts';
import type { ModelFiles } from './byte-source.ts';
import { defaultPattern, parameterShapes, weightShape } from './config.ts';
import { decodeUnit } from './df11-cpu-decoder.ts';
import type { MatrixInput } from './df11-encoder.ts';
import { inThreadEncoder, type UnitEncoder } from './unit-encoder.ts';
import type { Df11Unit } from './df11-types.ts';
import {
  df11ConfigJson,
  jsonFile,
  owningUnit,
  restFile,
  SIDE_FILES,
  unitFile,
  unitFileName,
  unitStoredBytes,
} from './df11-writer.ts';
import type { FileSink } from './memory-files.ts';
import { compilePattern, compareNatural, openModel, unitMatrixNames, type ModelWeights } from './model-reader.ts';
import { asUint16, bytesOf, DTYPE_SIZES, serializeSafetensors, type TensorData } from './safetensors.ts';

export interface UnitStats {
  unit: string;
  /** Weights in the unit. */
  elements: number;
  /** Bytes of the unit's six DF11 tensors. */
  compressedBytes: number;
  seconds: number;
}

export interface CompressProgress extends UnitStats {
  /** Units written so far minus one (skipped ones count as written), of `count`. */
  index: number;
  count: number;
}

export interface CompressOptions {
  /** pattern_dict; default: the official one for the architecture (defaultPattern). */
  pattern?: Record<string, string[]>;
  /** Called as each unit is written (in completion order when units are encoded in parallel). */
  onUnit?: (progress: CompressProgress) => void;
  /** Encodes the units (default: this thread); a worker pool encodes several at once. */
  encoder?: UnitEncoder;
  /** Units an earlier, interrupted run already wrote: not encoded or written again (nor in the summary). */
  skipUnit?: (unitName: string) => boolean;
}

export interface CompressSummary {
  units: UnitStats[];
  /** Weights in all units, and their DF11 bytes. */
  elements: number;
  compressedBytes: number;
  /** Whole model: bytes of every source tensor, and of every tensor written (DF11 units + uncompressed). */
  originalBytes: number;
  storedBytes: number;
  seconds: number;
}

/** The units a pattern selects in a model: module name → matrix tensor names, in canonical order. */
export function planUnits(model: ModelWeights, pattern: Record<string, string[]>): Map<string, string[]> {
  const patterns = compilePattern(pattern);
  const modules = new Set<string>();
  for (const name of model.tensorNames) {
    const parts = name.split('.');
    for (let i = 1; i < parts.length; i++) modules.add(parts.slice(0, i).join('.'));
  }
  const order = [...parameterShapes({ ...model.spec, tieWordEmbeddings: false }).keys()];
  const rank = (unit: string): number => {
    const i = order.findIndex((n) => n.startsWith(`${unit}.`));
    return i < 0 ? order.length : i;
  };
  const units = new Map<string, string[]>();
  for (const module of [...modules].sort((a, b) => rank(a) - rank(b) || compareNatural(a, b))) {
    const matches = patterns.filter((p) => p.regex.test(module));
    if (matches.length === 0) continue;
    if (matches.length > 1) throw new Df11Error('config', `module '${module}' matches more than one pattern_dict entry`);
    const names = unitMatrixNames(module, matches[0]!.subs);
    for (const name of names) {
      const loc = model.locate(name);
      if (!loc || loc.kind !== 'tensor') throw new Df11Error('missing-tensor', `${module}: pattern needs '${name}', which the model lacks`);
      const shape = weightShape(model.spec, name);
      if (!shape || shape.join() !== loc.shape.join()) {
        throw new Df11Error('config', `${name} has shape [${loc.shape}], the config implies [${shape ?? '?'}]`);
      }
    }
    units.set(module, names);
  }
  return units;
}

/** Compress an HF BF16 model directory into the official DF11 layout. */
export async function compressModel(source: ModelFiles, sink: FileSink, options: CompressOptions = {}): Promise<CompressSummary> {
  const started = performance.now();
  const model = await openModel(source);
  if (model.format !== 'bf16') throw new Df11Error('bad-request', `${source.location} is already DF11-compressed`);
  const pattern = options.pattern ?? defaultPattern(model.spec);
  const plan = planUnits(model, pattern);
  const inUnit = new Set([...plan.values()].flat());
  // Everything else is stored as is (tensorNames already leaves out a stored tied head).
  const rest = model.tensorNames.filter((n) => !inUnit.has(n));
  const moduleTensors = new Map<string, string[]>();
  const topLevel: string[] = [];
  for (const name of rest) {
    const unit = owningUnit(name, plan.keys());
    if (unit) moduleTensors.set(unit, [...(moduleTensors.get(unit) ?? []), name]);
    else topLevel.push(name);
  }

  const encoder = options.encoder ?? inThreadEncoder;
  const units: UnitStats[] = [];
  let storedBytes = 0;
  const compressUnit = async (unitName: string, names: string[]): Promise<void> => {
    const t0 = performance.now();
    const matrices: MatrixInput[] = [];
    for (const name of names) {
      const { shape, data } = await model.readTensor(name, 'BF16');
      matrices.push({ name, shape, bits: asUint16(data) });
    }
    // Fresh reads (files, downloads) go to a worker as transfers; views into a caller's buffer are copied.
    const unit = await encoder.encode(unitName, matrices, { transfer: source.freshReads === true });
    const extras = await readTensors(model, moduleTensors.get(unitName) ?? []);
    storedBytes += unitStoredBytes(unit) + extras.reduce((a, t) => a + t.data.byteLength, 0);
    await sink.write(unitFileName(unitName), unitFile(unit, extras));
    const stats: UnitStats = {
      unit: unitName,
      elements: unit.signMantissa.byteLength,
      compressedBytes: unitStoredBytes(unit),
      seconds: (performance.now() - t0) / 1000,
    };
    units.push(stats);
    options.onUnit?.({ ...stats, index: skipped + units.length - 1, count: plan.size });
  };
  // Up to `encoder.concurrency` units at once (each holds its BF16 input until encoded), and with a pool one
  // more, read while the workers are busy, so that no worker waits for a read or for a write to finish.
  const pending = [...plan].filter(([name]) => !options.skipUnit?.(name));
  const skipped = plan.size - pending.length;
  const lane = async (): Promise<void> => {
    for (let next = pending.shift(); next; next = pending.shift()) await compressUnit(...next);
  };
  const lanes = encoder.concurrency > 1 ? encoder.concurrency + 1 : 1;
  await Promise.all(Array.from({ length: Math.min(lanes, pending.length) }, lane));
  const order = [...plan.keys()];
  units.sort((a, b) => order.indexOf(a.unit) - order.indexOf(b.unit));
  const restTensors = await readTensors(model, topLevel);
  storedBytes += restTensors.reduce((a, t) => a + t.data.byteLength, 0);
  await sink.write('model.safetensors', restFile(restTensors));
  await sink.write('config.json', jsonFile(df11ConfigJson(model.config, pattern)));
  await copySideFiles(source, sink);
  return {
    units,
    elements: units.reduce((a, u) => a + u.elements, 0),
    compressedBytes: units.reduce((a, u) => a + u.compressedBytes, 0),
    originalBytes: model.tensorNames.reduce((a, n) => a + tensorBytes(model, n), 0),
    storedBytes,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Decode a unit to its BF16 bits (CPU by default; the GPU decoder plugs in here). */
export type UnitDecoder = (unit: Df11Unit) => Promise<Uint16Array>;

export const cpuDecoder: UnitDecoder = async (unit) => decodeUnit(unit);

/**
 * Decompress a DF11 directory into the HF BF16 layout: one model.safetensors (tensors sorted by name),
 * config.json without dfloat11_config, tokenizer and generation files copied.
 */
export async function decompressModel(source: ModelFiles, sink: FileSink, decode: UnitDecoder = cpuDecoder): Promise<void> {
  const model = await openModel(source);
  if (model.format !== 'df11') throw new Df11Error('bad-request', `${source.location} is not a DF11 directory`);
  const tensors = await readTensors(model, model.tensorNames);
  for (const unitName of model.unitNames) {
    const unit = await model.readUnit(unitName);
    const bits = await decode(unit);
    for (const m of unit.matrices) {
      tensors.push({ name: m.name, dtype: 'BF16', shape: m.shape, data: bytesOf(bits.subarray(m.offset, m.offset + m.size)) });
    }
  }
  tensors.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  await sink.write('model.safetensors', serializeSafetensors(tensors, { format: 'pt' }));
  const { dfloat11_config: _dropped, ...config } = model.config;
  await sink.write('config.json', jsonFile(config));
  await copySideFiles(source, sink);
}

function tensorBytes(model: ModelWeights, name: string): number {
  const loc = model.locate(name);
  return loc?.kind === 'tensor' ? loc.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZES[loc.dtype] : 0;
}

async function readTensors(model: ModelWeights, names: string[]): Promise<TensorData[]> {
  const out: TensorData[] = [];
  for (const name of names) out.push({ name, ...(await model.readTensor(name)) });
  return out;
}

async function copySideFiles(source: ModelFiles, sink: FileSink): Promise<void> {
  const present = new Set(await source.list());
  for (const name of SIDE_FILES) {
    if (!present.has(name)) continue;
    const file = await source.open(name);
    await sink.write(name, [await file.read(0, file.size)]);
  }
}

