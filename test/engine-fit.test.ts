/** Fit before download: config.json only, both weight modes planned against the budget; the default budget heuristic. */
import { describe, expect, it } from 'vitest';
import { checkFit } from '../src/engine/fit.ts';
import { defaultBudgetBytes, GIB } from '../src/model/budget.ts';
import { codeOf } from '../src/testing/error-code.ts';

/** Llama-3.1-8B's config.json (transformers 4.x). */
const LLAMA_8B = {
  model_type: 'llama',
  hidden_size: 4096,
  intermediate_size: 14336,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  vocab_size: 128256,
  max_position_embeddings: 131072,
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
};

/** Serves only config.json; records every URL asked for. */
function configOnly(config: unknown, seen: string[]) {
  return async (url: string): Promise<Response> => {
    seen.push(url);
    return url.endsWith('/config.json') ? new Response(JSON.stringify(config)) : new Response('', { status: 404 });
  };
}

describe('checkFit', () => {
  it('reads config.json only, and at 14 GiB an 8B model fits as DF11 but not as BF16', async () => {
    const seen: string[] = [];
    const fit = await checkFit('https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct', { budgetBytes: 14 * GIB }, { fetch: configOnly(LLAMA_8B, seen) });
    expect(seen).toEqual(['https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct/resolve/main/config.json']);
    expect(fit.parameters).toBe(8_030_261_248);
    expect(fit.format).toBe('bf16');
    expect(fit.df11.fits).toBe(true);
    expect(fit.df11.weightsEstimated).toBe(true);
    expect(fit.df11.maxContext).toBeGreaterThan(8192);
    expect(fit.bf16).toMatchObject({ fits: false, maxContext: 0 });
    expect(fit.bf16.reason).toMatch(/does not fit in 14\.00 GiB/);
  });

  it('with room for both, DF11 buys more context than BF16', async () => {
    const fit = await checkFit('https://example.com/m/', { budgetBytes: 20 * GIB }, { fetch: configOnly(LLAMA_8B, []) });
    expect(fit.bf16.fits).toBe(true);
    expect(fit.df11.maxContext).toBeGreaterThan(fit.bf16.maxContext);
    expect(fit.df11.weightBytes).toBeLessThan(0.7 * fit.bf16.weightBytes);
  });

  it('a gated config is access-denied; a missing one is network', async () => {
    const gated = async (): Promise<Response> => new Response('', { status: 401 });
    expect(await codeOf(checkFit('https://example.com/m/', { budgetBytes: GIB }, { fetch: gated }))).toBe('access-denied');
    expect(await codeOf(checkFit('https://example.com/m/', { budgetBytes: GIB }, { fetch: configOnly(null, []) }))).toBe('network');
  });
});

describe('defaultBudgetBytes', () => {
  it('is twice maxBufferSize, within [1, 16] GiB, and at most half of a small device memory', () => {
    expect(defaultBudgetBytes({ maxBufferSize: 256 * 2 ** 20 })).toBe(GIB);
    expect(defaultBudgetBytes({ maxBufferSize: 4 * GIB })).toBe(8 * GIB);
    expect(defaultBudgetBytes({ maxBufferSize: 2 ** 50 })).toBe(16 * GIB);
    expect(defaultBudgetBytes({ maxBufferSize: 4 * GIB }, { deviceMemoryGiB: 4 })).toBe(2 * GIB);
    expect(defaultBudgetBytes({ maxBufferSize: 4 * GIB }, { deviceMemoryGiB: 8 })).toBe(8 * GIB);
  });
});
