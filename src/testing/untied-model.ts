/**
 * A tied BF16 model seen as untied: `lm_head.weight` is a stored copy of the embedding table, so the logits
 * are the tied model's and tests reach the untied-head paths (an LM-head unit, a resident head) with the
 * tiny tied fixtures.
 */
import type { ModelWeights } from '../format/model-reader.ts';
import { EMBED, HEAD } from '../model/layout.ts';

export function untiedView(model: ModelWeights): ModelWeights {
  const embed = model.locate(EMBED);
  if (model.format !== 'bf16' || !model.spec.tieWordEmbeddings || embed?.kind !== 'tensor') throw new Error('untiedView needs a tied BF16 model');
  return {
    ...model,
    spec: { ...model.spec, tieWordEmbeddings: false },
    tensorNames: [...model.tensorNames, HEAD],
    locate: (name) => (name === HEAD ? { ...embed, name: HEAD } : model.locate(name)),
    readTensor: (name, dtype) => model.readTensor(name === HEAD ? EMBED : name, dtype),
  };
}
