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
import { attentionScratchBytes, attentionTiling } from '../src/gpu/kernels/attention.ts';
import { memoryLayout } from '../src/model/layout.ts';
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
    // f32 per chunk token: x, xb (2·4096), q|k|v ((32 + 2·8)·128), qr, att (2·32·128), gate|up (2·14336);
    // once: xf (4096), logits and their readback (2·128256); BF16 embedding rows 2 · 64 · 4096; the
    // attention split partials for this context.
    const partials = attentionScratchBytes(spec('llama-3.1-8b'), attentionTiling(Infinity), plan.maxContext, 64);
    expect(plan.activationBytes).toBe(4 * 64 * 51_200 + 4 * 4096 + 8 * 128_256 + 2 * 64 * 4096 + partials);
    expect(plan.activationBytes).toBe(14_673_920 + partials);
    expect(plan.kvBytesPerToken).toBe(2 * 32 * 8 * 128 * 4);
    expect(plan.ropeBytesPerToken).toBe(128 * 4);
    const rest = 16 * GiB - 16_061_054_976 - 14_673_920 - partials;
    expect(plan.maxContext).toBe(Math.floor(rest / (262_144 + 512)));
    expect(plan.kvCacheBytes).toBe(plan.maxContext * 262_144);
    expect(plan.limitedBy).toBe('memory');
    expect(plan.spareBytes).toBe(rest - plan.maxContext * (262_144 + 512));
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
    const partials = attentionScratchBytes(spec('llama-3.1-8b'), attentionTiling(Infinity), plan.maxContext, 64);
    const fixed = 10_940_868_218 + 4 * 266_240 + 2 * layer + 14_673_920 + partials;
    expect(plan.maxContext).toBe(Math.floor((16 * GiB - fixed) / 262_656));
  });

  it('an f16 KV cache halves the bytes per token: Llama-3.1-8B in DF11 at 16 GiB gets ≥ 1.9× the f32 context', () => {
    const f32 = planMemory(spec('llama-3.1-8b'), { mode: 'df11', budgetBytes: 16 * GiB, kvDtype: 'f32', residentLayers: 0 });
    const f16 = planMemory(spec('llama-3.1-8b'), { mode: 'df11', budgetBytes: 16 * GiB, kvDtype: 'f16', residentLayers: 0 });
    expect(f32).toEqual(planMemory(spec('llama-3.1-8b'), { mode: 'df11', budgetBytes: 16 * GiB, residentLayers: 0 }));
    expect(f16.kvBytesPerToken).toBe(2 * 32 * 8 * 128 * 2);
    const rest = 16 * GiB - (f16.weightBytes + f16.transientBytes + f16.activationBytes);
    expect(f16.maxContext).toBe(Math.floor(rest / (131_072 + 512)));
    expect(f16.maxContext).toBeGreaterThanOrEqual(41_600);
    expect(f16.maxContext / f32.maxContext).toBeGreaterThanOrEqual(1.9);
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

  it('Gemma-3-1B (999,885,952 parameters): four norms and q/k norms per layer, two RoPE tables, sandwich activations', () => {
    const params = 999_885_952;
    const small = 26 * (4 * 1152 + 2 * 256) + 1152;
    const plan = planMemory(spec('gemma-3-1b'), { mode: 'bf16', budgetBytes: 8 * GiB });
    expect(plan.matrixWeightBytes).toBe(2 * (params - small));
    expect(plan.smallWeightBytes).toBe(4 * small);
    expect(plan.kvBytesPerToken).toBe(2 * 26 * 1 * 256 * 4);
    expect(plan.ropeBytesPerToken).toBe(2 * 256 * 4); // local and global tables
    // f32 per chunk token: x, xb and ob, the o/down output before its post-norm (3·1152); q|k|v ((4 + 2·1)·256);
    // qr, att (2·4·256); gate|up (2·6912); once: xf (1152), logits and their readback (2·262144);
    // BF16 embedding rows 2 · 64 · 1152; the attention split partials for this context.
    const partials = attentionScratchBytes(spec('gemma-3-1b'), attentionTiling(Infinity), plan.maxContext, 64);
    expect(plan.activationBytes).toBe(4 * 64 * (3 * 1152 + 6 * 256 + 2 * 4 * 256 + 2 * 6912) + 4 * 1152 + 8 * 262_144 + 2 * 64 * 1152 + partials);
    expect(plan.maxContext).toBe(32_768);
    expect(plan.limitedBy).toBe('max-position-embeddings');
  });

  it('Phi-4-mini (3,836,021,760 parameters): fused qkv / gate_up units, 96 rotary dims', () => {
    const params = 3_836_021_760;
    const small = 32 * 2 * 3072 + 3072;
    const bf16 = planMemory(spec('phi-4-mini'), { mode: 'bf16', budgetBytes: 16 * GiB });
    expect(bf16.matrixWeightBytes).toBe(2 * (params - small));
    expect(bf16.ropeBytesPerToken).toBe(96 * 4);
    const df11 = planMemory(spec('phi-4-mini'), { mode: 'df11', budgetBytes: 16 * GiB, residentLayers: 0 });
    // One layer: qkv (40·128 × 3072) + o (3072²) + gate_up (16384 × 3072) + down (3072 × 8192), in BF16.
    expect(df11.transientBytes).toBe(2 * (5120 * 3072 + 3072 * 3072 + 16384 * 3072 + 3072 * 8192));
    expect(df11.matrixWeightBytes).toBe(ceilDf11(200_064 * 3072) + 32 * ceilDf11(100_663_296));
  });

  it('SmolLM3-3B (3,075,098,624 parameters) and Qwen3.5-2B plan; Qwen3.5 keeps KV for its 6 attention layers and a fixed state for the 18 others', () => {
    const small = 36 * 2 * 2048 + 2048;
    expect(planMemory(spec('smollm3-3b'), { mode: 'bf16', budgetBytes: 16 * GiB }).matrixWeightBytes).toBe(2 * (3_075_098_624 - small));
    const q = spec('qwen3.5-2b');
    // Matrices: embedding (tied) + 18 Gated DeltaNet layers (in_proj_qkv 6144, z 2048, b 16, a 16 rows; out_proj;
    // MLP) + 6 attention layers (q_proj with its gate 2·8·256 rows, k, v 2·256, o; MLP).
    const mlp = 3 * 6144 * 2048;
    const linear = (6144 + 2048 + 16 + 16) * 2048 + 2048 * 2048 + mlp;
    const attention = (2 * 8 * 256 + 2 * 2 * 256) * 2048 + 2048 * 2048 + mlp;
    const plan = planMemory(q, { mode: 'bf16', budgetBytes: 16 * GiB, kvDtype: 'f32' });
    expect(plan.matrixWeightBytes).toBe(2 * (248_320 * 2048 + 18 * linear + 6 * attention));
    expect(plan.kvBytesPerToken).toBe(2 * 6 * 2 * 256 * 4);
    const layout = memoryLayout(q, { mode: 'bf16', contextLength: 1024, chunkTokens: 64 });
    expect(layout.has('kv.k.0')).toBe(false);
    expect(layout.buffer('kv.k.3').bytes).toBe(2 * 1024 * 256 * 4);
    // The recurrent state does not grow with the context: (16 value heads, 128, 128) f32 and 3 conv inputs of 6144 channels.
    for (const ctx of [1024, 4096]) {
      const l = memoryLayout(q, { mode: 'bf16', contextLength: ctx, chunkTokens: 64 });
      expect(l.buffer('state.delta.0').bytes).toBe(16 * 128 * 128 * 4);
      expect(l.buffer('state.conv.0').bytes).toBe(3 * 6144 * 4);
    }
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
    const at64 = memoryLayout(s, { mode: 'bf16', contextLength: 64, chunkTokens: 64 });
    const fixed = at64.totalBytes - at64.bytesOf('kv') - at64.buffer('act.ropeCosSin').bytes;
    expect(() => planMemory(s, { mode: 'bf16', budgetBytes: fixed + 63 * (tight.kvBytesPerToken + tight.ropeBytesPerToken) })).toThrow(/at least 64/);
    expect(planMemory(s, { mode: 'bf16', budgetBytes: fixed + 64 * (tight.kvBytesPerToken + tight.ropeBytesPerToken) }).maxContext).toBe(64);
  });
});

describe('layer residency (the memory/speed dial)', () => {
  // Llama-3.1-8B in df11 mode, 10.9-bit estimates, f32 KV cache. A resident layer adds its BF16 bytes and
  // drops its DF11 unit; the resident head adds the head's BF16 bytes, drops its unit and (every layer
  // resident) the decode buffer. The rest of the layout at zero residency comes from memoryLayout.
  const s8 = spec('llama-3.1-8b');
  const embed = 128_256 * 4096;
  const layer = 218_103_808;
  const perLayer = 2 * layer - ceilDf11(layer);
  const headStep = 2 * embed - ceilDf11(embed) - 2 * layer;
  const at = (budgetBytes: number, more: { contextLength?: number; residentLayers?: number | 'auto' } = {}) => planMemory(s8, { mode: 'df11', budgetBytes, ...more });
  const none = (contextLength: number) => memoryLayout(s8, { mode: 'df11', contextLength, chunkTokens: 64 }).totalBytes;

  it('states the step sizes it is built on', () => {
    expect(perLayer).toBe(139_041_177);
    expect(headStep).toBeLessThan(0); // with every layer resident, a resident head frees more than it costs
    const resident = (layers: number, head: boolean) => memoryLayout(s8, { mode: 'df11', contextLength: 4096, chunkTokens: 64, resident: { layers, head } }).totalBytes;
    expect(resident(5, false) - none(4096)).toBe(5 * perLayer);
    expect(resident(32, true) - resident(32, false)).toBe(headStep);
  });

  it('gives the default context first, then as many layers as the rest buys', () => {
    for (const gib of [12, 13, 14, 15]) {
      const plan = at(gib * GiB);
      const layers = Math.floor((gib * GiB - none(DEFAULT_CONTEXT)) / perLayer);
      expect(layers, `${gib} GiB`).toBeGreaterThan(0);
      expect(layers, `${gib} GiB`).toBeLessThan(32);
      expect(plan.maxContext).toBe(DEFAULT_CONTEXT);
      expect(plan.resident).toEqual({ layers, head: false, totalLayers: 32 });
      expect(plan.limitedBy).toBe('requested');
      expect(plan.totalBytes).toBe(none(DEFAULT_CONTEXT) + layers * perLayer);
      expect(plan.spareBytes).toBeLessThan(perLayer);
    }
  });

  it('with everything resident, a context nobody asked for takes the rest; one asked for stays', () => {
    const plan = at(17 * GiB);
    expect(plan.resident).toEqual({ layers: 32, head: true, totalLayers: 32 });
    expect(plan.transientBytes).toBe(0);
    expect(plan.maxContext).toBeGreaterThan(DEFAULT_CONTEXT);
    expect(plan.limitedBy).toBe('memory');
    expect(plan.spareBytes).toBeLessThan(plan.kvBytesPerToken + plan.ropeBytesPerToken + 4096);
    const asked = at(17 * GiB, { contextLength: 2048 });
    expect(asked.maxContext).toBe(2048);
    expect(asked.resident).toEqual({ layers: 32, head: true, totalLayers: 32 });
  });

  it('cuts the context before it keeps anything resident', () => {
    const plan = at(11 * GiB);
    expect(plan.resident.layers).toBe(0);
    expect(plan.maxContext).toBeLessThan(DEFAULT_CONTEXT);
    expect(plan.maxContext).toBe(at(11 * GiB, { residentLayers: 0 }).maxContext);
    expect(plan.limitedBy).toBe('memory');
    // A longer context asked for leaves fewer layers resident.
    expect(at(14 * GiB, { contextLength: 8192 }).resident.layers).toBe(Math.floor((14 * GiB - none(8192)) / perLayer));
  });

  it('takes an explicit split as given (the head with the last layer), the context what is left', () => {
    const plan = at(14 * GiB, { residentLayers: 8 });
    expect(plan.resident).toEqual({ layers: 8, head: false, totalLayers: 32 });
    expect(plan.totalBytes).toBeLessThanOrEqual(14 * GiB);
    expect(plan.spareBytes).toBeLessThan(plan.kvBytesPerToken + plan.ropeBytesPerToken + 4096);
    expect(at(24 * GiB, { residentLayers: 32 }).resident.head).toBe(true);
    expect(() => at(24 * GiB, { residentLayers: 33 })).toThrow(/resident layers 33/);
    expect(() => at(12 * GiB, { residentLayers: 32 })).toThrow(/does not fit in 12\.00 GiB/);
    // bf16 mode: everything is resident.
    expect(planMemory(s8, { mode: 'bf16', budgetBytes: 24 * GiB }).resident).toEqual({ layers: 32, head: true, totalLayers: 32 });
  });

  it('shares a known DF11 total over the units by weight count, so residency drops real bytes', () => {
    const total = 10_800_000_000;
    const plan = planMemory(s8, { mode: 'df11', budgetBytes: 14 * GiB, df11WeightBytes: total, residentLayers: 0 });
    expect(plan.matrixWeightBytes).toBe(total);
    const some = planMemory(s8, { mode: 'df11', budgetBytes: 14 * GiB, df11WeightBytes: total, residentLayers: 4 });
    const unit = Math.floor((total * layer) / (2 * embed + 32 * layer));
    expect(some.matrixWeightBytes).toBe(total - 4 * unit + 4 * 2 * layer);
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
    expect(result.bf16).toEqual(planMemory(spec('llama-3.1-8b'), { mode: 'bf16', budgetBytes: 16 * GiB, kvDtype: 'f16' }));
    expect(result.df11).toEqual(planMemory(spec('llama-3.1-8b'), { mode: 'df11', budgetBytes: 16 * GiB, kvDtype: 'f16' }));
    const small = JSON.parse((await run(['test/fixtures/configs/llama-3.1-8b.json', '--budget', '12GB', '--json'])).out);
    expect(small.bf16.error.code).toBe('model-too-large');
    expect(small.df11.maxContext).toBeGreaterThan(0);
  });

  it('prints the side-by-side table', async () => {
    const { code, out } = await run(['test/fixtures/configs/llama-3.1-8b.json', '--budget', '16GB']);
    expect(code).toBe(0);
    expect(out).toMatch(/BF16\s+DF11/);
    // f16 KV cache by default; DF11 at 16 GiB keeps every layer and the head resident, the rest is context.
    expect(out).toMatch(/\ncontext\s+8,326\s+10,871\n/);
    expect(out).toMatch(/resident BF16\s+32 of 32 layers \+ head\s+32 of 32 layers \+ head\n/);
    const f32 = await run(['test/fixtures/configs/llama-3.1-8b.json', '--budget', '16GB', '--kv-cache', 'f32', '--resident', '0']);
    expect(f32.out).toMatch(/\ncontext\s+4,171\s+22,000\n/);
    expect(f32.out).toMatch(/resident BF16\s+32 of 32 layers \+ head\s+0 of 32 layers\n/);
    const dial = await run(['test/fixtures/configs/llama-3.1-8b.json', '--budget', '14GB', '--context', '4096']);
    expect(dial.out).toMatch(/resident BF16\s+22 of 32 layers\n/); // BF16 does not fit in 14 GiB
    expect(dial.out).toMatch(/limited by\s+requested\n/);
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
