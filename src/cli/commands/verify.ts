import { parseArgs } from 'node:util';
import { Df11Error } from '../../errors.ts';
import { cpuDecoder, type UnitDecoder } from '../../format/compress-model.ts';
import { openModel, type ModelWeights } from '../../format/model-reader.ts';
import { directoryFiles } from '../../format/node-files.ts';
import { asUint16 } from '../../format/safetensors.ts';
import type { Command } from '../command.ts';

/** The unit decoders `--decoder` can pick (each says what it runs on through `log`); a GPU decoder registers here. */
export const DECODERS: Record<string, (log: (line: string) => void) => Promise<UnitDecoder>> = {
  cpu: async () => cpuDecoder,
  gpu: async (log) => {
    const { createNodeGpu } = await import('../../gpu/node.ts');
    const { Df11Decoder } = await import('../../gpu/df11-decode.ts');
    const { readUnitOnce } = await import('../../gpu/df11-readback.ts');
    const gpu = await createNodeGpu();
    const a = gpu.adapterInfo;
    log(`GPU adapter: ${[a.vendor, a.architecture, a.device, a.description].filter((s) => s).join(' / ') || 'unnamed'}`);
    const decoder = await Df11Decoder.create(gpu);
    return (unit) => readUnitOnce(decoder, unit);
  },
};

const usage = `usage: df11 verify <df11-dir> <bf16-dir> [--decoder ${Object.keys(DECODERS).join('|')}] [--gpu]

--gpu is --decoder gpu: the WebGPU kernel (Dawn; SwiftShader on machines without a GPU).

Decodes every DF11 unit and compares every weight, bit for bit, with the BF16 original (matched by
tensor name); uncompressed tensors are compared too. One line per unit, then a summary.
Exit status 0 only if everything matches.`;

export const command: Command = {
  name: 'verify',
  summary: 'check a DFloat11 model bit for bit against its BF16 original',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { decoder: { type: 'string', default: 'cpu' }, gpu: { type: 'boolean', default: false } },
    });
    const makeDecoder = DECODERS[values.gpu ? 'gpu' : values.decoder];
    if (positionals.length !== 2 || !makeDecoder) {
      process.stderr.write(`${usage}\n`);
      return 2;
    }
    const [df11Dir, refDir] = positionals as [string, string];
    const df11 = await openModel(directoryFiles(df11Dir));
    if (df11.format !== 'df11') throw new Df11Error('bad-request', `${df11Dir} is not a DF11 directory`);
    const ref = await openModel(directoryFiles(refDir));
    if (ref.format !== 'bf16') throw new Df11Error('bad-request', `${refDir} is not a BF16 model directory`);
    const log = (line: string): void => void process.stdout.write(`${line}\n`);
    const result = await verifyModels(df11, ref, await makeDecoder(log), log);
    return result.mismatches === 0 ? 0 : 1;
  },
};

export interface VerifyResult {
  units: number;
  weights: number;
  tensors: number;
  mismatches: number;
}

/**
 * Compares every tensor of `ref` with where `df11` keeps it: decoded unit matrices (one unit in memory
 * at a time) or uncompressed tensors. A tied head in `ref` is checked against the DF11 embedding.
 */
export async function verifyModels(
  df11: ModelWeights,
  ref: ModelWeights,
  decode: UnitDecoder,
  log: (line: string) => void,
): Promise<VerifyResult> {
  const result: VerifyResult = { units: 0, weights: 0, tensors: 0, mismatches: 0 };
  const fail = (message: string): void => {
    result.mismatches++;
    log(`MISMATCH ${message}`);
  };
  // Reference tensors grouped by the DF11 unit that holds them; the rest are uncompressed.
  const byUnit = new Map<string, Array<{ refName: string; matrix: string }>>();
  const plain: string[] = [];
  for (const name of ref.tensorNames) {
    const loc = df11.locate(name);
    if (!loc) fail(`${name}: not in the DF11 model`);
    else if (loc.kind === 'tensor') plain.push(name);
    else byUnit.set(loc.unit, [...(byUnit.get(loc.unit) ?? []), { refName: name, matrix: loc.matrix.name }]);
  }
  for (const unitName of df11.unitNames) {
    const t0 = performance.now();
    const unit = await df11.readUnit(unitName);
    const bits = await decode(unit);
    const before = result.mismatches;
    const checks = byUnit.get(unitName) ?? [];
    for (const m of unit.matrices) {
      if (!checks.some((c) => c.matrix === m.name)) fail(`${m.name}: not in the BF16 model`);
    }
    for (const { refName, matrix } of checks) {
      const m = unit.matrices.find((x) => x.name === matrix)!;
      const expected = asUint16((await ref.readTensor(refName, 'BF16')).data);
      const diff = compareBits(bits.subarray(m.offset, m.offset + m.size), expected);
      if (diff) fail(`${refName}: ${diff}`);
    }
    result.units++;
    result.weights += unit.signMantissa.length;
    const ok = result.mismatches === before ? 'OK' : 'FAILED';
    log(`${ok.padEnd(6)} ${unitName}: ${unit.matrices.length} matrices, ${unit.signMantissa.length} weights, ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  }
  const plainBefore = result.mismatches;
  for (const name of plain) {
    const [a, b] = await Promise.all([df11.readTensor(name), ref.readTensor(name)]);
    if (a.dtype !== b.dtype || a.shape.join() !== b.shape.join()) {
      fail(`${name}: ${a.dtype} [${a.shape}] vs ${b.dtype} [${b.shape}]`);
    } else if (!a.data.every((v, i) => v === b.data[i])) {
      fail(`${name}: bytes differ`);
    }
    result.tensors++;
  }
  log(`${(result.mismatches === plainBefore ? 'OK' : 'FAILED').padEnd(6)} ${plain.length} uncompressed tensors`);
  log(
    result.mismatches === 0
      ? `verified: ${result.units} units, ${result.weights} weights and ${result.tensors} uncompressed tensors are bit-identical`
      : `FAILED: ${result.mismatches} mismatches`,
  );
  return result;
}

/** Undefined when equal, else a short description of the difference. */
function compareBits(actual: Uint16Array, expected: Uint16Array): string | undefined {
  if (actual.length !== expected.length) return `${actual.length} weights decoded, ${expected.length} expected`;
  let first = -1;
  let count = 0;
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (count === 0) return undefined;
  const hex = (v: number): string => `0x${v.toString(16).padStart(4, '0')}`;
  return `${count} of ${actual.length} weights differ (first at ${first}: ${hex(actual[first]!)}, expected ${hex(expected[first]!)})`;
}
