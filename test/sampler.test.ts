import { describe, expect, it } from 'vitest';
import { applyRepetitionPenalty, argmax, createRng, filterDistribution, Sampler, type FilterOptions } from '../src/engine/sampler.ts';
import { StopStringMatcher } from '../src/engine/stop-strings.ts';
import { isDf11Error } from '../src/errors.ts';

const off: FilterOptions = { temperature: 1, topK: 0, topP: 1, minP: 0 };
/** Logits whose softmax is exactly `probs` (up to rounding). */
const logitsOf = (probs: number[]) => new Float32Array(probs.map((p) => (p > 0 ? Math.log(p) : -Infinity)));
const asMap = (d: { ids: number[]; probs: number[] }) => Object.fromEntries(d.ids.map((id, i) => [id, d.probs[i]]));

describe('filterDistribution', () => {
  it('is the plain softmax with every filter off', () => {
    const d = filterDistribution(new Float32Array([1, 3, 2, -Infinity]), off);
    const z = Math.exp(1) + Math.exp(3) + Math.exp(2);
    expect(d.ids).toEqual([1, 2, 0]);
    expect(d.probs[0]).toBeCloseTo(Math.exp(3) / z, 12);
    expect(d.probs[2]).toBeCloseTo(Math.exp(1) / z, 12);
  });

  it('temperature divides the logits before the softmax', () => {
    const d = filterDistribution(new Float32Array([0, Math.log(4)]), { ...off, temperature: 2 });
    // exp(log 4 / 2) = 2 → probs 1/3, 2/3
    expect(asMap(d)[1]).toBeCloseTo(2 / 3, 6);
    expect(asMap(d)[0]).toBeCloseTo(1 / 3, 6);
  });

  it('top-k keeps the k largest and any ties with the k-th', () => {
    const logits = new Float32Array([5, 1, 4, 4, 0, 3]);
    expect(filterDistribution(logits, { ...off, topK: 1 }).ids).toEqual([0]);
    expect(filterDistribution(logits, { ...off, topK: 2 }).ids).toEqual([0, 2, 3]); // tie at 4 kept
    expect(filterDistribution(logits, { ...off, topK: 4 }).ids).toEqual([0, 2, 3, 5]);
    const d = filterDistribution(logits, { ...off, topK: 4 });
    expect(d.probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('top-p keeps the smallest most-likely set whose mass reaches p, including the token that crosses it', () => {
    const logits = logitsOf([0.1, 0.5, 0.25, 0.15]);
    expect(filterDistribution(logits, { ...off, topP: 0.5 }).ids).toEqual([1]); // 0.5 reaches 0.5
    expect(filterDistribution(logits, { ...off, topP: 0.6 }).ids).toEqual([1, 2]);
    expect(filterDistribution(logits, { ...off, topP: 0.8 }).ids).toEqual([1, 2, 3]); // 0.75 < 0.8 → add 0.15
    expect(filterDistribution(logits, { ...off, topP: 0.01 }).ids).toEqual([1]); // at least one
    const d = filterDistribution(logits, { ...off, topP: 0.6 });
    expect(d.probs[0]).toBeCloseTo(0.5 / 0.75, 6);
  });

  it('min-p drops tokens below min_p times the top probability', () => {
    const logits = logitsOf([0.05, 0.4, 0.3, 0.25]);
    expect(filterDistribution(logits, { ...off, minP: 0.7 }).ids).toEqual([1, 2]); // 0.28 threshold
    expect(filterDistribution(logits, { ...off, minP: 0.6 }).ids).toEqual([1, 2, 3]); // 0.24
    expect(filterDistribution(logits, { ...off, minP: 1 }).ids).toEqual([1]);
  });

  it('applies top-k before top-p (top-p sees the renormalised top-k mass)', () => {
    const logits = logitsOf([0.4, 0.3, 0.2, 0.1]);
    // after top-k 2: 0.4/0.7 = 0.571 → top-p 0.55 keeps only token 0; without top-k it would keep 0 and 1
    expect(filterDistribution(logits, { ...off, topK: 2, topP: 0.55 }).ids).toEqual([0]);
    expect(filterDistribution(logits, { ...off, topP: 0.55 }).ids).toEqual([0, 1]);
  });
});

describe('repetition penalty (HF semantics)', () => {
  it('divides positive logits, multiplies negative ones, once per distinct id', () => {
    const logits = new Float32Array([2, -2, 3, 0.5]);
    applyRepetitionPenalty(logits, [0, 1, 1, 1, 3], 2);
    expect([...logits]).toEqual([1, -4, 3, 0.25]);
  });

  it('can change the greedy choice', () => {
    const s = new Sampler({ temperature: 0, repetition_penalty: 1.5 });
    const logits = new Float32Array([3, 2.5, 0]);
    expect(s.sample(logits, [])).toBe(0);
    expect(s.sample(logits, [0])).toBe(1); // 3 / 1.5 = 2 < 2.5
    expect([...logits]).toEqual([3, 2.5, 0]); // the caller's logits are untouched
  });
});

describe('Sampler', () => {
  it('temperature 0 is argmax (first on ties) and ignores the PRNG', () => {
    const logits = new Float32Array([1, 7, 7, -3]);
    expect(argmax(logits)).toBe(1);
    expect(new Sampler({ temperature: 0, seed: 1 }).sample(logits, [])).toBe(1);
    expect(new Sampler({ temperature: 0, seed: 2 }).sample(logits, [])).toBe(1);
  });

  it('same seed gives the same tokens; another seed other tokens', () => {
    const logits = new Float32Array(64).map((_, i) => Math.sin(i) * 2);
    const draw = (seed: number) => {
      const s = new Sampler({ temperature: 1, seed });
      return Array.from({ length: 40 }, () => s.sample(logits, []));
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
  });

  it('draws with the filtered probabilities', () => {
    const logits = logitsOf([0.6, 0.3, 0.1]);
    const s = new Sampler({ temperature: 1, seed: 123 });
    const counts = [0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[s.sample(logits, [])]++;
    expect(counts[0] / n).toBeCloseTo(0.6, 1);
    expect(counts[1] / n).toBeCloseTo(0.3, 1);
    expect(counts[2] / n).toBeCloseTo(0.1, 1);
    const k1 = new Sampler({ temperature: 1, top_k: 1, seed: 5 });
    for (let i = 0; i < 100; i++) expect(k1.sample(logits, [])).toBe(0);
  });

  it('the PRNG is uniform enough on [0, 1)', () => {
    const r = createRng(42);
    let sum = 0;
    for (let i = 0; i < 10000; i++) {
      const x = r();
      expect(x >= 0 && x < 1).toBe(true);
      sum += x;
    }
    expect(sum / 10000).toBeCloseTo(0.5, 1);
  });

  it('rejects bad options with a bad-request error', () => {
    for (const o of [{ temperature: -1 }, { top_p: 0 }, { top_p: 1.5 }, { top_k: 1.5 }, { min_p: 2 }, { repetition_penalty: 0 }]) {
      let err: unknown;
      try {
        new Sampler(o);
      } catch (e) {
        err = e;
      }
      expect(isDf11Error(err, 'bad-request')).toBe(true);
    }
  });
});

describe('StopStringMatcher', () => {
  it('cuts at a stop string split over pieces and never emits part of it', () => {
    const m = new StopStringMatcher(['The End']);
    const out = ['Once. Th', 'e E', 'nd and more'].map((p) => m.push(p));
    expect(out).toEqual(['Once. ', '', '']);
    expect(m.done).toBe(true);
    expect(m.flush()).toBe('');
  });

  it('releases held text when it turns out not to be a stop string', () => {
    const m = new StopStringMatcher(['\n\n', 'STOP']);
    expect(m.push('a\n')).toBe('a');
    expect(m.push('b ST')).toBe('\nb ');
    expect(m.push('x')).toBe('STx');
    expect(m.push('ST')).toBe('');
    expect(m.flush()).toBe('ST');
    expect(m.done).toBe(false);
  });

  it('picks the earliest of several stop strings', () => {
    const m = new StopStringMatcher(['cat', 'dog']);
    expect(m.push('a dog and a cat')).toBe('a ');
  });
});

/** The textbook version: sort everything, apply each filter in turn. The prefiltered code must agree. */
function naiveFilter(logits: Float32Array, o: FilterOptions): Map<number, number> {
  const ids = [...logits.keys()].filter((i) => logits[i] > -Infinity).sort((a, b) => logits[b] - logits[a] || a - b);
  let kept = ids;
  if (o.topK > 0 && o.topK < kept.length) {
    const kth = logits[kept[o.topK - 1]] / o.temperature;
    kept = kept.filter((i) => logits[i] / o.temperature >= kth);
  }
  const max = logits[kept[0]] / o.temperature;
  const w = kept.map((i) => Math.exp(logits[i] / o.temperature - max));
  let p = w.map((x) => x / w.reduce((a, b) => a + b, 0));
  if (o.topP < 1) {
    // HF: remove where the ascending cumulative mass (the tail from that token down) <= 1 - p
    const tail = new Array<number>(p.length + 1).fill(0);
    for (let j = p.length - 1; j >= 0; j--) tail[j] = tail[j + 1] + p[j];
    const n = Math.max(1, tail.slice(0, p.length).filter((t) => t > 1 - o.topP).length);
    kept = kept.slice(0, n);
    p = p.slice(0, n);
  }
  if (o.minP > 0) {
    const n = Math.max(1, p.filter((x) => x >= o.minP * p[0]).length);
    kept = kept.slice(0, n);
    p = p.slice(0, n);
  }
  const s = p.reduce((a, b) => a + b, 0);
  return new Map(kept.map((id, j) => [id, p[j] / s]));
}

describe('filterDistribution prefilter agrees with the naive full sort', () => {
  it('on random large vocabularies and random filter settings', () => {
    const rng = createRng(99);
    const gauss = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
    for (let trial = 0; trial < 40; trial++) {
      const n = 1000 + Math.floor(rng() * 9000);
      const spread = 1 + rng() * 6;
      const logits = new Float32Array(n).map(() => Math.round(gauss() * spread * 8) / 8); // rounding makes ties
      if (trial % 5 === 0) logits[Math.floor(rng() * n)] = -Infinity;
      const o: FilterOptions = {
        temperature: [0.3, 0.7, 1, 1.6][trial % 4],
        topK: trial % 3 === 0 ? 1 + Math.floor(rng() * 60) : 0,
        topP: trial % 2 === 0 ? 0.5 + rng() * 0.49 : 1,
        minP: trial % 4 === 1 ? rng() * 0.3 : 0,
      };
      const got = filterDistribution(logits, o);
      const want = naiveFilter(logits, o);
      expect(got.ids.length, JSON.stringify(o)).toBe(want.size);
      got.ids.forEach((id, j) => expect(got.probs[j]).toBeCloseTo(want.get(id)!, 9));
    }
  });
});
