/**
 * The GPU fuzz target: a corrupt DF11 unit through the decode kernel (Node + Dawn; SwiftShader where
 * there is no GPU) and through the CPU decoder. The two must agree — both raise corrupt-stream or both
 * give the same bits — else the case is a 'disagree'.
 */
import { isDf11Error } from '../../errors.ts';
import type { Df11Unit } from '../../format/df11-types.ts';
import { Df11Decoder } from '../../gpu/df11-decode.ts';
import { readUnitOnce } from '../../gpu/df11-readback.ts';
import { createNodeGpu } from '../../gpu/node.ts';
import type { CaseOutcome } from './cpu-targets.ts';
import { baseUnits, classifyDecoded, cpuDecode, sameDecode, unitCase, type Decoded } from './unit-cases.ts';

export interface GpuTarget {
  name: 'gpu';
  run(seed: number): Promise<CaseOutcome | 'disagree'>;
}

export async function gpuTarget(): Promise<GpuTarget> {
  const gpu = await createNodeGpu();
  // 256 invocations: two windows per span, so gaps are checked both inside a span and at its start
  const decoder = await Df11Decoder.create(gpu, { workgroupSize: 256 });
  const bases = baseUnits();
  const decodedBases = new Map(bases.map((b) => [b, cpuDecode(b)] as const));
  const gpuDecode = async (unit: Df11Unit): Promise<Decoded> => {
    try {
      return { ok: true, bits: await readUnitOnce(decoder, unit) };
    } catch (e) {
      if (isDf11Error(e)) return { ok: false, code: e.code };
      throw e;
    }
  };
  return {
    name: 'gpu',
    async run(seed) {
      const { base, unit } = unitCase(bases, seed);
      const cpu = cpuDecode(unit);
      if (!sameDecode(await gpuDecode(unit), cpu)) return 'disagree';
      const baseBits = decodedBases.get(base)!;
      return classifyDecoded(cpu, baseBits.ok ? baseBits.bits : new Uint16Array());
    },
  };
}
