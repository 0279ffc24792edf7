/**
 * Will a model fit, and with how much context, before a byte of weights is downloaded: config.json alone
 * gives the shapes, the planner the memory of each weight mode against the budget.
 *
 *   const budget = await adapterBudget();                    // or the user's choice
 *   const fit = await checkFit('https://huggingface.co/Qwen/Qwen3-0.6B', budget);
 *   fit.df11.fits, fit.df11.maxContext, fit.bf16.maxContext  // DF11 sizes are the 10.9-bit estimate
 */
import { Df11Error, isDf11Error } from '../errors.ts';
import { parameterShapes, specFromConfig } from '../format/config.ts';
import type { Architecture } from '../format/model-spec.ts';
import { defaultBudgetBytes, environmentHints } from '../model/budget.ts';
import type { WeightMode } from '../model/layout.ts';
import { planMemory } from '../model/planner.ts';
import { withAccessToken } from '../store/access-token.ts';
import { getJson, type FetchFn } from '../store/listing.ts';
import { modelDirectoryUrl } from './model-source.ts';

export interface Budget {
  /** GPU bytes for the model. */
  budgetBytes: number;
  /** The adapter's maxStorageBufferBindingSize (caps one layer's KV buffer), when known. */
  maxStorageBindingBytes?: number;
}

export interface ModeFit {
  fits: boolean;
  /** Positions of context the budget buys (0 when it does not fit); DF11: with every layer compressed. */
  maxContext: number;
  /** Resident weight bytes (DF11: estimated at 10.9 bits per weight until the files are read). */
  weightBytes: number;
  weightsEstimated: boolean;
  /** Why it does not fit, when it does not. */
  reason?: string;
}

export interface FitReport {
  directoryUrl: string;
  architecture: Architecture;
  parameters: number;
  /** Whether the source is published as DF11 (else BF16, compressed on load). */
  format: 'df11' | 'bf16';
  budgetBytes: number;
  df11: ModeFit;
  bf16: ModeFit;
}

export interface FitOptions {
  accessToken?: string;
  fetch?: FetchFn;
  signal?: AbortSignal;
}

export async function checkFit(source: string, budget: Budget, options: FitOptions = {}): Promise<FitReport> {
  const dirUrl = modelDirectoryUrl(source);
  const plainFetch: FetchFn = options.fetch ?? ((input, init) => fetch(input, init));
  const fetchFn = options.accessToken ? withAccessToken(plainFetch, options.accessToken, new URL(dirUrl).origin) : plainFetch;
  const config = await getJson(dirUrl, 'config.json', fetchFn, options.signal);
  if (config === null) throw new Df11Error('network', `${dirUrl}config.json not found (404)`);
  const spec = specFromConfig(config);
  let parameters = 0;
  for (const shape of parameterShapes(spec).values()) parameters += shape.reduce((a, b) => a * b, 1);
  const fit = (mode: WeightMode): ModeFit => {
    try {
      // DF11 with no layer resident in BF16: the most context DF11 buys (the residency dial trades it for speed).
      const residentLayers = mode === 'df11' ? 0 : undefined;
      const plan = planMemory(spec, { mode, budgetBytes: budget.budgetBytes, maxStorageBindingBytes: budget.maxStorageBindingBytes, residentLayers });
      return { fits: true, maxContext: plan.maxContext, weightBytes: plan.weightBytes, weightsEstimated: plan.weightsEstimated };
    } catch (e) {
      if (!isDf11Error(e, 'model-too-large') && !isDf11Error(e, 'gpu-limits')) throw e;
      return { fits: false, maxContext: 0, weightBytes: 0, weightsEstimated: mode === 'df11', reason: e.message };
    }
  };
  return {
    directoryUrl: dirUrl,
    architecture: spec.architecture,
    parameters,
    format: (config as Record<string, unknown>).dfloat11_config === undefined ? 'bf16' : 'df11',
    budgetBytes: budget.budgetBytes,
    df11: fit('df11'),
    bf16: fit('bf16'),
  };
}

/** The default budget of this browser's adapter (src/model/budget.ts); no adapter → Df11Error('no-webgpu'). */
export async function adapterBudget(gpu: GPU | undefined = (globalThis.navigator as Navigator | undefined)?.gpu): Promise<Budget> {
  const adapter = await gpu?.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Df11Error('no-webgpu', 'no WebGPU adapter: cannot tell how much GPU memory there is');
  return {
    budgetBytes: defaultBudgetBytes(adapter.limits, environmentHints()),
    maxStorageBindingBytes: Math.min(adapter.limits.maxStorageBufferBindingSize, adapter.limits.maxBufferSize),
  };
}
