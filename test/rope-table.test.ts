// RoPE tables on the CPU: partial rotary, linear scaling and Phi-3's longrope, against the HF formulas
// written out here (inv_freq = 1 / (ext · theta^(2i/d)), cos/sin · attention_factor).
import { describe, expect, it } from 'vitest';
import type { RopeSpec } from '../src/format/model-spec.ts';
import { inverseFrequencies, ropeTable } from '../src/model/rope-table.ts';

const f = Math.fround;

describe('ropeTable', () => {
  it('partial rotary: rotary_dim / 2 frequencies over the rotary dims', () => {
    const rope: RopeSpec = { theta: 10000, type: 'default', rotaryDim: 4 };
    expect([...inverseFrequencies(rope)]).toEqual([1, f(1 / f(100))]);
    const table = ropeTable(rope, 3);
    expect(table.length).toBe(3 * 2 * 2);
    expect(table[(2 * 2 + 1) * 2]).toBe(f(Math.cos(f(2 * f(1 / f(100))))));
  });

  it('linear scaling divides the frequencies by the factor', () => {
    const base = inverseFrequencies({ theta: 1e6, type: 'default', rotaryDim: 8 });
    const linear = inverseFrequencies({ theta: 1e6, type: 'linear', rotaryDim: 8, linearFactor: 8 });
    expect([...linear]).toEqual([...base].map((x) => f(x / 8)));
  });

  it('longrope: short factors before original_max_position_embeddings, long ones from there, cos/sin scaled', () => {
    const longrope = { shortFactor: [1, 2], longFactor: [3, 5], originalMaxPositionEmbeddings: 4, attentionFactor: 1.25 };
    const rope: RopeSpec = { theta: 10000, type: 'longrope', rotaryDim: 4, longrope };
    const table = ropeTable(rope, 6);
    for (let pos = 0; pos < 6; pos++) {
      const ext = pos < 4 ? longrope.shortFactor : longrope.longFactor;
      for (let i = 0; i < 2; i++) {
        const inv = f(1 / f(ext[i]! * f(Math.pow(10000, f((2 * i) / 4)))));
        const angle = f(pos * inv);
        expect(table[(pos * 2 + i) * 2], `cos pos ${pos} i ${i}`).toBe(f(f(Math.cos(angle)) * 1.25));
        expect(table[(pos * 2 + i) * 2 + 1], `sin pos ${pos} i ${i}`).toBe(f(f(Math.sin(angle)) * 1.25));
      }
    }
  });
});
