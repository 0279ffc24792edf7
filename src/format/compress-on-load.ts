/**
 * A BF16 model presented as DF11: the units of the default pattern (one per decoder layer, the embedding,
 * an untied LM head), each encoded when it is first read. Locations resolve the tied head like the DF11
 * reader does; the tensors outside the units (norms, biases) stay plain.
 */
import { Df11Error } from '../errors.ts';
import { defaultPattern } from './config.ts';
import { planUnits } from './compress-model.ts';
import { encodeUnit } from './df11-encoder.ts';
import type { Df11Matrix } from './df11-types.ts';
import type { ModelWeights, WeightLocation } from './model-reader.ts';
import { asUint16 } from './safetensors.ts';

export function compressOnLoad(model: ModelWeights): ModelWeights {
  if (model.format !== 'bf16') throw new Df11Error('bad-request', 'compress on load needs a BF16 model');
  const plan = planUnits(model, defaultPattern(model.spec));
  const located = new Map<string, { unit: string; matrix: Df11Matrix }>();
  for (const [unit, names] of plan) {
    let offset = 0;
    for (const name of names) {
      const loc = model.locate(name);
      if (loc?.kind !== 'tensor') throw new Df11Error('missing-tensor', `${unit}: no tensor '${name}'`);
      const size = loc.shape.reduce((a, b) => a * b, 1);
      located.set(name, { unit, matrix: { name, shape: loc.shape, offset, size } });
      offset += size;
    }
  }
  const inUnit = new Set(located.keys());
  return {
    spec: model.spec,
    config: model.config,
    format: 'df11',
    unitNames: [...plan.keys()],
    tensorNames: model.tensorNames.filter((n) => !inUnit.has(n)),
    locate(tensorName: string): WeightLocation | undefined {
      const name = tensorName === 'lm_head.weight' && model.spec.tieWordEmbeddings ? 'model.embed_tokens.weight' : tensorName;
      const l = located.get(name);
      return l ? { kind: 'df11', unit: l.unit, matrix: l.matrix } : model.locate(tensorName);
    },
    async readUnit(name) {
      const names = plan.get(name);
      if (!names) throw new Df11Error('missing-tensor', `no DF11 unit '${name}'`);
      const inputs = [];
      for (const m of names) {
        const { shape, data } = await model.readTensor(m, 'BF16');
        inputs.push({ name: m, shape, bits: asUint16(data) });
      }
      return encodeUnit(name, inputs);
    },
    readTensor: (name, dtype) => model.readTensor(name, dtype),
  };
}
