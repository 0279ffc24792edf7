// Memory planner: exact byte arithmetic, written out here from the published parameter counts of the
// models (Llama-3.1-8B 8,030,261,248; Qwen3-8B 8,190,735,360; Llama-3.2-1B 1,235,814,400) and the
// formulas stated in src/model/planner.ts and the buffers of src/model/layout.ts, not from the planner's own output.
import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.ts';
import { parseBytes } from '../src/cli/byte-size.ts';
import { isDf11Error } from '../src/errors.ts';
import { specFromConfig } from '../src/format/config.ts';
import { DEFAULT_CONTEXT, planMemory } from '../src/model/planner.ts';

const GiB = 2 ** 30;
const spec = (name: string) => specFromConfig(JSON.parse(readFileSync(`test/fixtures/configs/${name}.json`, 'utf8')));
const ceilDf11 = (n: number) => Math.ceil((n * 109) / 80);

describe('planMemory', () => {
  it('Llama-3.1-8B in BF16 at 16 GiB', () => {
    const params = 8_030_261_248;
    const small = 32 * 2 * 4096 + 4096; // input/post-attention norms per layer + final norm
    const plan = planMemory(spec('llama-3.1-8b'), { mode: 'bf16', budgetBytes: 16 * GiB });
    expect(plan.matrixWeightBytes).toBe(2 * (params - small));
    expect(plan.smallWeightBytes).toBe(4 * small);
    expect(plan.weightBytes).toBe(16_061_054_976);
    expect(plan.transientBytes).toBe(0);
    // f32 per chunk token: x, xb (2·4096), q|k|v ((32 + 2·8)·128), qr, att (2·32·128), gate|up, hb (3·14336);
    // once: xf (4096), logits and their readback (2·128256); BF16 embedding rows 2 · 64 · 4096.
    expect(plan.activationBytes).toBe(4 * 64 * 65_536 + 4 * 4096 + 8 * 128_256 + 2 * 64 * 4096);
    expect(plan.activationBytes).toBe(18_343_936);
    expect(plan.kvBytesPerToken).toBe(2 * 32 * 8 * 128 * 4);
    expect(plan.ropeBytesPerToken).toBe(128 * 4);
    const rest = 16 * GiB - 16_061_054_976 - 18_343_936;
    expect(plan.maxContext).toBe(Math.floor(rest / (262_144 + 512)));
    expect(plan.maxContext).toBe(4189);
    expect(plan.kvCacheBytes).toBe(4189 * 262_144);
    expect(plan.limitedBy).toBe('memory');
    expect(plan.spareBytes).toBe(rest - 4189 * (262_144 + 512));
    expect(plan.spareBytes).toBeLessThan(262_656);
  });

  it('Llama-3.1-8B in DF11 at 16 GiB: 10.9-bit estimate per unit, one layer decode buffer', () => {
    const embed = 128_256 * 4096;
    const layer = 2 * 4096 * 4096 + 2 * 1024 * 4096 + 3 * 14_336 * 4096;
    expect(layer).toBe(218_103_808);
    const plan = planMemory(spec('llama-3.1-8b'), { mode: 'df11', budgetBytes: 16 * GiB, residentLayers: 0 });
    expect(plan.weightsEstimated).toBe(true);
    expect(plan.matrixWeightBytes).toBe(2 * ceilDf11(embed) + 32 * ceilDf11(layer));
    expect(plan.matrixWeightBytes).toBe(10_940_868_218);
    expect(plan.transientBytes).toBe(2 * layer);
    const fixed = 10_940_868_218 + 4 * 266_240 + 2 * layer + 18_343_936;
    expect(plan.maxContext).toBe(Math.floor((16 * GiB - fixed) / 262_656));
    expect(plan.maxContext).toBe(22_018);
  });

  it('Qwen3-8B counts its q/k norms; real DF11 sizes replace the estimate', () => {
    const params = 8_190_735_360;
    const small = 36 * (2 * 4096 + 2 * 128) + 4096;
    const bf16 = planMemory(spec('qwen3-8b'), { mode: 'bf16', budgetBytes: 24 * GiB });
    expect(bf16.weightBytes).toBe(2 * (params - small) + 4 * small);
    expect(bf16.kvBytesPerToken).toBe(2 * 36 * 8 * 128 * 4);
    const real = planMemory(spec('qwen3-8b'), { mode: 'df11', budgetBytes: 24 * GiB, df11WeightBytes: 11_000_000_000, residentLayers: 0 });
    expect(real.weightsEstimated).toBe(false);
    expect(real.matrixWeightBytes).toBe(11_000_000_000);
    expect(real.weightBytes).toBe(11_000_000_000 + 4 * small);
  });

  it('Llama-3.2-1B: tied head counted once, context capped at max_position_embeddings (both reported)', () => {
    const params = 1_235_814_400;
    const small = 16 * 2 * 2048 + 2048;
    const embed = 128_256 * 2048;
    const layer = 2 * 2048 * 2048 + 2 * 512 * 2048 + 3 * 8192 * 2048;
    const bf16 = planMemory(spec('llama-3.2-1b'), { mode: 'bf16', budgetBytes: 24 * GiB });
    expect(bf16.matrixWeightBytes).toBe(2 * (params - small));
    expect(bf16.maxContext).toBe(131_072);
    expect(bf16.limitedBy).toBe('max-position-embeddings');
    expect(bf16.maxContextByMemory).toBeGreaterThan(131_072);
    expect(bf16.kvCacheBytes).toBe(131_072 * 2 * 16 * 8 * 64 * 4);
    const df11 = planMemory(spec('llama-3.2-1b'), { mode: 'df11', budgetBytes: 8 * GiB, residentLayers: 0 });
    expect(df11.matrixWeightBytes).toBe(ceilDf11(embed) + 16 * ceilDf11(layer));
  });

  it('caps one layer\'s K/V buffer at the adapter binding limit', () => {
    const plan = planMemory(spec('llama-3.2-1b'), { mode: 'df11', budgetBytes: 8 * GiB, maxStorageBindingBytes: 128 * 2 ** 20 });
    expect(plan.maxContext).toBe((128 * 2 ** 20) / (8 * 64 * 4));
    expect(plan.limitedBy).toBe('binding-size');
  });

  it('refuses with a typed error when the model cannot fit', () => {
    let error: unknown;
    try {
      planMemory(spec('llama-3.1-8b'), { mode: 'bf16', budgetBytes: 8 * GiB });
    } catch (e) {
      error = e;
    }
    expect(isDf11Error(error, 'model-too-large')).toBe(true);
    expect((error as Error).message).toMatch(/does not fit in 8\.00 GiB/);
    // Fits the weights but not a single prefill chunk of context: still refused.
    const s = spec('llama-3.2-1b');
    const tight = planMemory(s, { mode: 'bf16', budgetBytes: 4 * GiB });
    const fixed = tight.weightBytes + tight.activationBytes;
    expect(() => planMemory(s, { mode: 'bf16', budgetBytes: fixed + 63 * (tight.kvBytesPerToken + tight.ropeBytesPerToken) })).toThrow(/at least 64/);
    expect(planMemory(s, { mode: 'bf16', budgetBytes: fixed + 64 * (tight.kvBytesPerToken + tight.ropeBytesPerToken) }).maxContext).toBe(64);
  });
});

describe('layer residency (the memory/speed dial)', () => {
  // Llama-3.1-8B in df11 mode, 10.9-bit estimates. At zero residency: DF11 matrices + norms + one layer's
  // decode buffer + activations (as in the test above); a resident layer adds its BF16 bytes and drops its
  // DF11 unit; the resident head adds the head's BF16 bytes, drops its unit and (every layer resident) the
  // decode buffer. Per token of context: 262,656 bytes (K, V, RoPE row).
  const embed = 128_256 * 4096;
  const layer = 218_103_808;
  const perToken = 262_656;
  const fixed0 = 2 * ceilDf11(embed) + 32 * ceilDf11(layer) + 4 * 266_240 + 2 * layer + 18_343_936;
  const perLayer = 2 * layer - ceilDf11(layer);
  const headStep = 2 * embed - ceilDf11(embed) - 2 * layer;
  const allResident = fixed0 + 32 * perLayer + headStep;
  const at = (budgetBytes: number, more: { contextLength?: number; residentLayers?: number | 'auto' } = {}) =>
    planMemory(spec('llama-3.1-8b'), { mode: 'df11', budgetBytes, ...more });

  it('states the step sizes it is built on', () => {
    expect(fixed0).toBe(11_396_484_730);
    expect(perLayer).toBe(139_041_177);
    expect(headStep).toBeLessThan(0); // with every layer resident, a resident head frees more than it costs
    expect(at(64 * GiB, { residentLayers: 0, contextLength: 4096 }).totalBytes).toBe(fixed0 + 4096 * perToken);
  });

  it('gives the default context first, then as many layers as the rest buys', () => {
    for (const [gib, layers] of [[12, 2], [13, 10], [14, 18], [15, 26]] as const) {
      const plan = at(gib * GiB);
      expect(Math.floor((gib * GiB - fixed0 - 4096 * perToken) / perLayer), `${gib} GiB`).toBe(layers);
      expect(plan.maxContext).toBe(DEFAULT_CONTEXT);
      expect(plan.resident).toEqual({ layers, head: false, totalLayers: 32 });
      expect(plan.limitedBy).toBe('requested');
      expect(plan.totalBytes).toBe(fixed0 + layers * perLayer + 4096 * perToken);
      expect(plan.spareBytes).toBeLessThan(perLayer);
    }
  });

  it('with everything resident, a context nobody asked for takes the rest; one asked for stays', () => {
    const plan = at(16 * GiB);
    expect(plan.resident).toEqual({ layers: 32, head: true, totalLayers: 32 });
    expect(plan.transientBytes).toBe(0);
    expect(plan.maxContext).toBe(Math.floor((16 * GiB - allResident) / perToken));
    expect(plan.maxContext).toBe(5464);
    expect(plan.limitedBy).toBe('memory');
    const asked = at(16 * GiB, { contextLength: 2048 });
    expect(asked.maxContext).toBe(2048);
    expect(asked.resident).toEqual({ layers: 32, head: true, totalLayers: 32 });
  });

  it('cuts the context before it keeps anything resident', () => {
    const plan = at(11 * GiB);
    expect(plan.resident.layers).toBe(0);
    expect(plan.maxContext).toBe(Math.floor((11 * GiB - fixed0) / perToken));
    expect(plan.maxContext).toBe(1578);
    expect(plan.limitedBy).toBe('memory');
    // A longer context asked for leaves fewer layers resident.
    expect(at(14 * GiB, { contextLength: 8192 }).resident.layers).toBe(Math.floor((14 * GiB - fixed0 - 8192 * perToken) / perLayer));
  });

  it('takes an explicit split as given (the head with the last layer), the context what is left', () => {
    const plan = at(14 * GiB, { residentLayers: 8 });
    expect(plan.resident).toEqual({ layers: 8, head: false, totalLayers: 32 });
    expect(plan.maxContext).toBe(Math.floor((14 * GiB - fixed0 - 8 * perLayer) / perToken));
    expect(at(24 * GiB, { residentLayers: 32 }).resident.head).toBe(true);
    expect(() => at(24 * GiB, { residentLayers: 33 })).toThrow(/resident layers 33/);
    expect(() => at(12 * GiB, { residentLayers: 32 })).toThrow(/does not fit in 12\.00 GiB/);
    // bf16 mode: everything is resident.
    expect(planMemory(spec('llama-3.1-8b'), { mode: 'bf16', budgetBytes: 24 * GiB }).resident).toEqual({ layers: 32, head: true, totalLayers: 32 });
  });

  it('shares a known DF11 total over the units by weight count, so residency drops real bytes', () => {
    const total = 10_800_000_000;
    const none = at(14 * GiB, { residentLayers: 0, contextLength: 4096 });
    const plan = planMemory(spec('llama-3.1-8b'), { mode: 'df11', budgetBytes: 14 * GiB, df11WeightBytes: total, residentLayers: 0 });
    expect(plan.matrixWeightBytes).toBe(total);
    const some = planMemory(spec('llama-3.1-8b'), { mode: 'df11', budgetBytes: 14 * GiB, df11WeightBytes: total, residentLayers: 4 });
    const unit = Math.floor((total * layer) / (2 * embed + 32 * layer));
    expect(some.matrixWeightBytes).toBe(total - 4 * unit + 4 * 2 * layer);
    expect(none.weightsEstimated).toBe(true);
  });
});

describe('df11 plan', () => {
  afterEach(() => vi.restoreAllMocks());

  async function run(args: string[]): Promise<{ code: number; out: string }> {
    let out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    const code = await main(['plan', ...args]);
    vi.restoreAllMocks();
    return { code, out };
  }

  it('parses budgets in binary units', () => {
    expect(parseBytes('16GB')).toBe(16 * GiB);
    expect(parseBytes('16GiB')).toBe(16 * GiB);
    expect(parseBytes('512MB')).toBe(512 * 2 ** 20);
    expect(parseBytes('1.5G')).toBe(1.5 * GiB);
    expect(parseBytes('123456')).toBe(123456);
    expect(() => parseBytes('lots')).toThrow(/byte size/);
  });

  it('--json gives one object with both modes, and typed errors where a mode does not fit', async () => {
    const { code, out } = await run(['test/fixtures/configs/llama-3.1-8b.json', '--budget', '16GB', '--json']);
    expect(code).toBe(0);
    const result = JSON.parse(out);
    expect(result.budgetBytes).toBe(16 * GiB);
    expect(result.bf16).toEqual(planMemory(spec('llama-3.1-8b'), { mode: 'bf16', budgetBytes: 16 * GiB }));
    expect(result.df11).toEqual(planMemory(spec('llama-3.1-8b'), { mode: 'df11', budgetBytes: 16 * GiB }));
    const small = JSON.parse((await run(['test/fixtures/configs/llama-3.1-8b.json', '--budget', '12GB', '--json'])).out);
    expect(small.bf16.error.code).toBe('model-too-large');
    expect(small.df11.maxContext).toBeGreaterThan(0);
  });

  it('prints the side-by-side table', async () => {
    const { code, out } = await run(['test/fixtures/configs/llama-3.1-8b.json', '--budget', '16GB']);
    expect(code).toBe(0);
    expect(out).toMatch(/BF16\s+DF11/);
    expect(out).toMatch(/\ncontext\s+4,189\s+5,464\n/);
    expect(out).toMatch(/resident BF16\s+32 of 32 layers \+ head\s+32 of 32 layers \+ head\n/);
    const dial = await run(['test/fixtures/configs/llama-3.1-8b.json', '--budget', '14GB', '--context', '4096']);
    expect(dial.out).toMatch(/resident BF16\s+18 of 32 layers\n/); // BF16 does not fit in 14 GiB
    expect(dial.out).toMatch(/limited by\s+requested\n/);
    const none = await run(['test/fixtures/configs/llama-3.1-8b.json', '--budget', '16GB', '--resident', '0']);
    expect(none.out).toMatch(/\ncontext\s+4,189\s+22,018\n/);
  });

  it('uses the real DF11 unit sizes when the files sit next to config.json', async () => {
    const dir = 'test/fixtures/official-df11/stories-15m';
    const { out } = await run([join(dir, 'config.json'), '--budget', '1GB', '--resident', '0', '--json']);
    const { bf16, df11 } = JSON.parse(out);
    expect(df11.weightsEstimated).toBe(false);
    let files = 0;
    for (const f of ['lm_head', 'model_embed_tokens', ...Array.from({ length: 8 }, (_, i) => `model_layers_${i}`)]) {
      files += (await stat(join(dir, `${f}.safetensors`))).size;
    }
    // As uploaded: the unit arrays of the files, 4-byte padded, plus 2 KiB of decode lookup tables per unit.
    expect(df11.matrixWeightBytes).toBeLessThan(files + 10 * (2048 + 5 * 4));
    expect(df11.matrixWeightBytes).toBeLessThan(0.72 * bf16.matrixWeightBytes);
    expect(df11.matrixWeightBytes).toBeGreaterThan(0.6 * bf16.matrixWeightBytes);
  });
});
