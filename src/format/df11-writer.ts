/**
 * The official DFloat11 directory layout, written: config.json with `dfloat11_config`, one safetensors file
 * per unit (`model_layers_0.safetensors`) holding the unit's six tensors plus the module's own uncompressed
 * parameters (norms, biases), and `model.safetensors` with everything else.
 */
import type { Df11Unit } from './df11-types.ts';
import type { Df11Config } from './model-reader.ts';
import { bytesOf, serializeSafetensors, type TensorData } from './safetensors.ts';

/** Compatible with the official loader, which checks the major/minor it understands. */
export const DF11_FORMAT_VERSION = '0.5.0';

/** File name of a unit: dots become underscores, as in official releases. */
export function unitFileName(unitName: string): string {
  return `${unitName.replace(/\./g, '_')}.safetensors`;
}

/** The HF config plus `dfloat11_config`. */
export function df11ConfigJson(hfConfig: Record<string, unknown>, pattern: Record<string, string[]>): Record<string, unknown> {
  const dfloat11_config: Df11Config = {
    version: DF11_FORMAT_VERSION,
    threads_per_block: [512],
    bytes_per_thread: 8,
    pattern_dict: pattern,
  };
  return { ...hfConfig, dfloat11_config };
}

/** A unit's six tensors, named `<unit>.<part>` with the official dtypes and shapes. */
export function unitTensors(unit: Df11Unit): TensorData[] {
  const u = unit.name;
  const k = unit.luts.byteLength / 256;
  return [
    { name: `${u}.split_positions`, dtype: 'I64', shape: [unit.splitPositions.length], data: bytesOf(BigInt64Array.from(unit.splitPositions, BigInt)) },
    { name: `${u}.encoded_exponent`, dtype: 'U8', shape: [unit.encodedExponent.byteLength], data: unit.encodedExponent },
    { name: `${u}.gaps`, dtype: 'U8', shape: [unit.gaps.byteLength], data: unit.gaps },
    { name: `${u}.luts`, dtype: 'U8', shape: [k, 256], data: unit.luts },
    { name: `${u}.output_positions`, dtype: 'U8', shape: [unit.outputPositions.byteLength], data: bytesOf(unit.outputPositions) },
    { name: `${u}.sign_mantissa`, dtype: 'U8', shape: [unit.signMantissa.byteLength], data: unit.signMantissa },
  ];
}

/** Bytes a unit occupies on disk (its six tensors, without headers). */
export function unitStoredBytes(unit: Df11Unit): number {
  return unitTensors(unit).reduce((a, t) => a + t.data.byteLength, 0);
}

/** A unit's file: its six tensors plus the module's uncompressed parameters. */
export function unitFile(unit: Df11Unit, moduleTensors: TensorData[]): Uint8Array[] {
  return serializeSafetensors([...unitTensors(unit), ...moduleTensors]);
}

/** `model.safetensors`: the parameters that belong to no unit. */
export function restFile(tensors: TensorData[]): Uint8Array[] {
  return serializeSafetensors(tensors, { format: 'pt' });
}

/** The unit whose module contains `tensorName` (e.g. a layer's norms), if any. */
export function owningUnit(tensorName: string, unitNames: Iterable<string>): string | undefined {
  for (const unit of unitNames) if (tensorName.startsWith(`${unit}.`)) return unit;
  return undefined;
}

/** Tokenizer and generation files copied alongside the weights, when present. */
export const SIDE_FILES = [
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
  'chat_template.json',
] as const;

/** Serialises JSON the way HF writes configs (2-space indent, trailing newline). */
export function jsonFile(value: unknown): Uint8Array[] {
  return [new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`)];
}
