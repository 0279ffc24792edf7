/**
 * The memory layout is what is allocated: for every fixture architecture × weight mode × two context
 * lengths, the planned bytes (memoryLayout, and planMemory at a budget of exactly that layout) equal the
 * bytes of the buffers the loaded generator holds (generator.memory(), summed from GPUBuffer sizes), to
 * the byte. The DF11 unit sizes are worked out here without the loader: encoded by src/format's
 * compressOnLoad for a BF16 directory, read from the safetensors headers for a DF11 directory. Then a few
 * splits of the memory/speed dial (layers kept resident in BF16), load only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compressOnLoad } from '../src/format/compress-on-load.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import { openModel, type ModelWeights } from '../src/format/model-reader.ts';
import { unitLengths, uploadedUnitBytes } from '../src/gpu/df11-decode.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { createGenerator } from '../src/model/generator.ts';
import { memoryLayout, type Residency, type WeightMode } from '../src/model/layout.ts';
import { df11UnitSizes, planMemory } from '../src/model/planner.ts';
import type { GeneratorMemory } from '../src/model/token-generator.ts';
import { untiedView } from '../src/testing/untied-model.ts';

// models/stories-15m is stories-micro's architecture at a size SwiftShader loads slowly; its official DF11
// directory stands in for it (in df11 mode: bf16 mode of a DF11 directory frees the units, leaving the BF16 layout).
// Only loading is needed (allocation), no forward: the compiled pipelines are shared by every generator of
// the device (Gpu.computePipeline), so after the first load each case is the buffers and their uploads.
const DIRS: Array<{ dir: string; modes: WeightMode[] }> = [
  { dir: 'test/fixtures/hf/tiny-llama-tied', modes: ['bf16', 'df11'] },
  { dir: 'test/fixtures/hf/tiny-qwen2', modes: ['bf16', 'df11'] },
  { dir: 'test/fixtures/hf/tiny-qwen3', modes: ['bf16', 'df11'] },
  { dir: 'test/fixtures/hf/tiny-smollm3', modes: ['bf16', 'df11'] }, // layers without RoPE
  { dir: 'test/fixtures/hf/tiny-phi3', modes: ['bf16', 'df11'] }, // fused qkv / gate_up, partial rotary table
  { dir: 'test/fixtures/hf/tiny-mistral-swa', modes: ['bf16', 'df11'] }, // sliding window (full-length KV cache)
  { dir: 'test/fixtures/hf/tiny-gemma3', modes: ['bf16', 'df11'] }, // sandwich norms (act.ob, 4 norms per layer)
  { dir: 'test/fixtures/hf/tiny-gemma3-mixed', modes: ['bf16', 'df11'] }, // + two RoPE tables back to back
  { dir: 'test/fixtures/hf/tiny-qwen3-5-text', modes: ['bf16', 'df11'] }, // Gated DeltaNet state (no KV for its linear layers), gated q_proj
  { dir: 'models/stories-micro', modes: ['bf16', 'df11'] },
  { dir: 'test/fixtures/official-df11/stories-15m', modes: ['df11'] },
];
const CONTEXTS = [24, 80];
const CHUNK = 16;

/** Uploaded sizes of the DF11 units df11 mode keeps resident, computed without the loader. */
async function unitSizes(model: ModelWeights, dir: string): Promise<Array<{ name: string; bytes: number }>> {
  if (model.format === 'df11') return (await df11UnitSizes(directoryFiles(dir), model.config))!;
  const compressed = compressOnLoad(model);
  const sizes = [];
  for (const name of compressed.unitNames) sizes.push({ name, bytes: uploadedUnitBytes(unitLengths(await compressed.readUnit(name))) });
  return sizes;
}

function total(m: GeneratorMemory): number {
  return m.weightBytes + m.transientBytes + m.kvCacheBytes + m.activationBytes;
}

let gpu: Gpu;
beforeAll(async () => {
  gpu = await createNodeGpu();
});
afterAll(() => gpu?.destroy());

for (const { dir, modes } of DIRS) {
  describe(dir, () => {
    let model: ModelWeights;
    let units: Array<{ name: string; bytes: number }>;
    beforeAll(async () => {
      model = await openModel(directoryFiles(dir));
      units = await unitSizes(model, dir);
    });

    for (const mode of modes) {
      for (const contextLength of CONTEXTS) {
        it(`${mode}, context ${contextLength}: planned bytes == allocated bytes`, async () => {
          const layout = memoryLayout(model.spec, { mode, contextLength, chunkTokens: CHUNK, maxBindingBytes: gpu.maxBindingSize, units: mode === 'df11' ? units : undefined });
          expect(layout.buffers.some((b) => b.estimated)).toBe(false);
          const gen = await createGenerator(gpu, model, { mode, contextLength, chunkTokens: CHUNK });
          try {
            const memory = gen.memory();
            expect(memory.weightBytes).toBe(layout.bytesOf('weights'));
            expect(memory.transientBytes).toBe(layout.bytesOf('transient'));
            expect(memory.kvCacheBytes).toBe(layout.bytesOf('kv'));
            expect(memory.activationBytes).toBe(layout.bytesOf('activation'));
            expect(total(memory)).toBe(layout.totalBytes);
            expect(gen.layout.totalBytes).toBe(layout.totalBytes);
            if (mode === 'bf16') expect(memory.transientBytes).toBe(0);
            else expect(memory.transientBytes).toBeGreaterThan(0);

            // The planner sums the same layout: at a budget of exactly these bytes it buys this context.
            const plan = planMemory(model.spec, { mode, budgetBytes: total(memory), prefillChunk: CHUNK, units: mode === 'df11' ? units : undefined, maxStorageBindingBytes: gpu.maxBindingSize });
            expect(plan.maxContext).toBe(contextLength);
            expect(plan.totalBytes).toBe(total(memory));
            expect(plan.spareBytes).toBe(0);
          } finally {
            gen.dispose();
          }
        });
      }
    }
  });
}

/**
 * Layer residency (df11 mode): layers the dial keeps decoded are resident BF16 and their DF11 units are
 * freed after the load decoded them; the layout lists only the units still decoded per step and no transient
 * buffer once nothing is. Checked on the GPU buffers alive after the load, not only on the byte sums.
 * tiny-qwen2 is seen untied (its head a stored copy of the embedding) to reach the LM-head unit.
 */
describe('layer residency (df11 mode): planned bytes == allocated bytes, resident units freed', () => {
  const contextLength = 24;
  const cases: Array<{ name: string; open: () => Promise<ModelWeights>; resident: Residency }> = [
    { name: 'untied tiny-qwen2, 1 of 2 layers', open: async () => untiedView(await openModel(directoryFiles('test/fixtures/hf/tiny-qwen2'))), resident: { layers: 1, head: false } },
    { name: 'untied tiny-qwen2, all layers, head decoded', open: async () => untiedView(await openModel(directoryFiles('test/fixtures/hf/tiny-qwen2'))), resident: { layers: 2, head: false } },
    { name: 'untied tiny-qwen2, all layers + head', open: async () => untiedView(await openModel(directoryFiles('test/fixtures/hf/tiny-qwen2'))), resident: { layers: 2, head: true } },
    { name: 'tied tiny-llama, all layers + head (= the embedding)', open: () => openModel(directoryFiles('test/fixtures/hf/tiny-llama-tied')), resident: { layers: 2, head: true } },
  ];
  for (const { name, open, resident } of cases) {
    it(name, async () => {
      const model = await open();
      const units = await unitSizes(model, '');
      const layout = memoryLayout(model.spec, { mode: 'df11', contextLength, chunkTokens: CHUNK, maxBindingBytes: gpu.maxBindingSize, units, resident });
      expect(layout.resident).toEqual(resident);
      const alive = trackBuffers(gpu);
      const gen = await createGenerator(gpu, model, { mode: 'df11', contextLength, chunkTokens: CHUNK, resident });
      try {
        const memory = gen.memory();
        expect(memory.weightBytes).toBe(layout.bytesOf('weights'));
        expect(memory.transientBytes).toBe(layout.bytesOf('transient'));
        expect(total(memory)).toBe(layout.totalBytes);
        expect(memory.resident).toEqual({ ...resident, totalLayers: model.spec.numLayers });
        // The DF11 units alive on the GPU are exactly those the layout lists (the rest were freed after the load).
        const unitKeys = layout.buffers.filter((b) => b.kind === 'weights' && b.key.startsWith('unit.')).map((b) => b.key.slice('unit.'.length));
        expect(alive.units().sort()).toEqual(unitKeys.sort());
        const decodedLayers = model.spec.numLayers - resident.layers;
        expect(unitKeys.filter((u) => u.startsWith('model.layers.')).length).toBe(decodedLayers);
        expect(unitKeys.includes('lm_head')).toBe(!model.spec.tieWordEmbeddings && !resident.head);
        expect(layout.has('transient')).toBe(!(resident.layers === model.spec.numLayers && resident.head));
        if (resident.layers === model.spec.numLayers && resident.head) expect(memory.transientBytes).toBe(0);
        // The planner gives the same split and bytes when told the same residency.
        if (resident.head === (resident.layers === model.spec.numLayers)) {
          const plan = planMemory(model.spec, { mode: 'df11', budgetBytes: total(memory), prefillChunk: CHUNK, units, maxStorageBindingBytes: gpu.maxBindingSize, residentLayers: resident.layers });
          expect(plan.maxContext).toBe(contextLength);
          expect(plan.totalBytes).toBe(total(memory));
          expect(plan.resident).toEqual(memory.resident);
        }
      } finally {
        gen.dispose();
        alive.stop();
      }
    });
  }
});

/** Labels of the GPU buffers created on `gpu` from now on and not destroyed; units() names the live DF11 units. */
function trackBuffers(g: Gpu): { units(): string[]; stop(): void } {
  const device = g.device;
  const original = device.createBuffer.bind(device);
  const live = new Set<GPUBuffer>();
  device.createBuffer = (descriptor: GPUBufferDescriptor): GPUBuffer => {
    const buffer = original(descriptor);
    live.add(buffer);
    const destroy = buffer.destroy.bind(buffer);
    buffer.destroy = () => {
      live.delete(buffer);
      destroy();
    };
    return buffer;
  };
  return {
    units: () => [...live].map((b) => /^df11 (.+) sign_mantissa$/.exec(b.label)?.[1]).filter((u): u is string => u !== undefined),
    stop: () => {
      device.createBuffer = original;
    },
  };
}

describe('memoryLayout', () => {
  it('lists every buffer once, with a reason, and sums its kinds', async () => {
    const model = await openModel(directoryFiles('test/fixtures/hf/tiny-qwen2'));
    const layout = memoryLayout(model.spec, { mode: 'df11', contextLength: 32, chunkTokens: 8 });
    expect(new Set(layout.buffers.map((b) => b.key)).size).toBe(layout.buffers.length);
    for (const b of layout.buffers) {
      expect(b.reason.length).toBeGreaterThan(0);
      expect(Number.isSafeInteger(b.bytes) && b.bytes > 0).toBe(true);
    }
    const kinds = (['weights', 'transient', 'activation', 'kv'] as const).reduce((a, k) => a + layout.bytesOf(k), 0);
    expect(kinds).toBe(layout.totalBytes);
    // Without real unit sizes the units are the 10.9-bit estimate, and say so.
    expect(layout.buffers.filter((b) => b.key.startsWith('unit.')).every((b) => b.estimated)).toBe(true);
    // K and V of every layer: (n_kv_heads, context, head_dim) f32.
    const { numKvHeads, headDim, numLayers } = model.spec;
    expect(layout.bytesOf('kv')).toBe(2 * numLayers * numKvHeads * 32 * headDim * 4);
    expect(() => layout.buffer('nope')).toThrow(/no buffer 'nope'/);
  });
});

describe('memoryLayout of the per-layer architectures', () => {
  it('Gemma 3: act.ob and four norms per layer (sandwich), two RoPE tables back to back at 256-byte offsets', async () => {
    const { spec } = await openModel(directoryFiles('test/fixtures/hf/tiny-gemma3-mixed'));
    const ctx = 30;
    const layout = memoryLayout(spec, { mode: 'bf16', contextLength: ctx, chunkTokens: 8 });
    expect(layout.buffer('act.ob').bytes).toBe(4 * 8 * spec.hiddenSize);
    const norms = ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm', 'self_attn.q_norm', 'self_attn.k_norm'];
    for (const n of norms) expect(layout.has(`small.model.layers.6.${n}.weight`), n).toBe(true);
    // (context, rotary_dim / 2, 2) f32 per table: global (linear scaling), then local, each its own binding.
    expect(spec.ropes.map((r) => r.rotaryDim)).toEqual([16, 16]);
    const table = 4 * ctx * 16;
    expect(layout.rope).toEqual([{ offset: 0, size: table }, { offset: Math.ceil(table / 256) * 256, size: table }]);
    expect(layout.buffer('act.ropeCosSin').bytes).toBe(Math.ceil(table / 256) * 256 + table);
    expect(planMemory(spec, { mode: 'bf16', budgetBytes: layout.totalBytes, prefillChunk: 8 }).ropeBytesPerToken).toBe(2 * 4 * 16);
  });

  it('Phi-3: one fused qkv and gate_up matrix per layer, a partial-rotary table; SmolLM3: one table though a layer has none', async () => {
    const phi3 = (await openModel(directoryFiles('test/fixtures/hf/tiny-phi3'))).spec;
    const layout = memoryLayout(phi3, { mode: 'bf16', contextLength: 10, chunkTokens: 4 });
    expect(layout.layers[0]!.map((g) => g.names.map((n) => n.replace('model.layers.0.', '')))).toEqual([
      ['self_attn.qkv_proj.weight'],
      ['self_attn.o_proj.weight'],
      ['mlp.gate_up_proj.weight'],
      ['mlp.down_proj.weight'],
    ]);
    const rotary = phi3.ropes[0]!.rotaryDim;
    expect(rotary).toBe(phi3.headDim * 0.75);
    expect(layout.buffer('act.ropeCosSin').bytes).toBe(4 * 10 * rotary);
    const smol = (await openModel(directoryFiles('test/fixtures/hf/tiny-smollm3'))).spec;
    expect(smol.layers.map((l) => l.rope)).toEqual([0, 0, 0, null]);
    expect(memoryLayout(smol, { mode: 'bf16', contextLength: 10, chunkTokens: 4 }).rope).toHaveLength(1);
  });
});
