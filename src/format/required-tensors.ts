/**
 * A model must hold every parameter its spec needs, with the shape the config implies: a header that
 * leaves a tensor out (or an index that lists only some shards) is Df11Error('missing-tensor') when the
 * model is opened, not a half-written model or a failure in the middle of a forward pass.
 */
import { Df11Error } from '../errors.ts';
import { parameterShapes } from './config.ts';
import type { ModelSpec } from './model-spec.ts';

/** Where a weight lives, as far as this check needs: its shape (a DF11 matrix or a stored tensor). */
type Locate = (name: string) => { kind: 'df11'; matrix: { shape: number[] } } | { kind: 'tensor'; shape: number[] } | undefined;

/** Throws for the first parameter of `spec` that `locate` cannot find or finds with another shape. */
export function checkRequiredTensors(spec: ModelSpec, locate: Locate, location: string): void {
  // parameterShapes loops over spec.numLayers, which specFromConfig has bounded (SIZE_LIMITS).
  for (const [name, shape] of parameterShapes(spec)) {
    const loc = locate(name);
    if (!loc) throw new Df11Error('missing-tensor', `${location}: the model has no '${name}', which a ${spec.architecture} model with this config needs`);
    const have = loc.kind === 'df11' ? loc.matrix.shape : loc.shape;
    if (have.length !== shape.length || have.some((d, i) => d !== shape[i])) {
      throw new Df11Error('config', `${location}: '${name}' has shape [${have}], the config implies [${shape}]`);
    }
  }
}
