import { Df11Error } from '../errors.ts';
import type { SamplingOptions } from './types.ts';

/** A token distribution after filtering: ids by decreasing probability, probabilities summing to 1. */
export interface Distribution {
  ids: number[];
  probs: number[];
}

export interface FilterOptions {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
}

/** Seeded 32-bit PRNG (mulberry32) giving floats in [0, 1): the same seed gives the same sequence. */
export function createRng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** HF repetition penalty, in place: every id seen once is penalised once (positive ÷ p, negative × p). */
export function applyRepetitionPenalty(logits: Float32Array, history: ArrayLike<number>, penalty: number): void {
  if (penalty === 1) return;
  const seen = new Set<number>();
  for (let i = 0; i < history.length; i++) {
    const id = history[i];
    if (seen.has(id) || id < 0 || id >= logits.length) continue;
    seen.add(id);
    const x = logits[id];
    logits[id] = x < 0 ? x * penalty : x / penalty;
  }
}

/** Index of the largest logit (the first one on ties, like torch.argmax). */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/**
 * Temperature, then top-k, top-p and min-p, in the order and with the semantics of HF transformers'
 * logits warpers: top-k keeps ties with the k-th value; top-p keeps the smallest most-likely set whose
 * mass reaches p (the token that crosses p is kept); min-p drops tokens below min_p × the top probability.
 * At least one token always survives.
 */
export function filterDistribution(logits: ArrayLike<number>, o: FilterOptions): Distribution {
  const scaled: number[] = [];
  const ids: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i] / o.temperature;
    if (x > -Infinity) {
      ids.push(i);
      scaled[i] = x;
    }
  }
  if (ids.length === 0) throw new Df11Error('bad-request', 'every logit is -Infinity; nothing to sample');
  ids.sort((a, b) => scaled[b] - scaled[a] || a - b);

  let n = ids.length;
  if (o.topK > 0 && o.topK < n) {
    const kth = scaled[ids[o.topK - 1]];
    n = o.topK;
    while (n < ids.length && scaled[ids[n]] >= kth) n++;
  }

  // softmax over the survivors (in float64; ids are sorted so ids[0] holds the max)
  const max = scaled[ids[0]];
  let probs = new Array<number>(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += probs[i] = Math.exp(scaled[ids[i]] - max);
  for (let i = 0; i < n; i++) probs[i] /= sum;

  if (o.topP < 1) {
    // keep token i while the mass of it and everything less likely exceeds 1 - p
    let tail = 1;
    let keep = 0;
    while (keep < n && tail > 1 - o.topP) tail -= probs[keep++];
    n = Math.max(keep, 1);
  }
  if (o.minP > 0) {
    const threshold = o.minP * probs[0];
    let keep = 1;
    while (keep < n && probs[keep] >= threshold) keep++;
    n = keep;
  }

  probs = probs.slice(0, n);
  const kept = probs.reduce((a, b) => a + b, 0);
  return { ids: ids.slice(0, n), probs: probs.map((p) => p / kept) };
}

/** Picks the next token from logits; one per request (it owns the seeded PRNG). */
export class Sampler {
  private readonly filter: FilterOptions;
  private readonly repetitionPenalty: number;
  private readonly random: () => number;

  constructor(options: SamplingOptions = {}) {
    const temperature = options.temperature ?? 1;
    const topP = options.top_p ?? 1;
    const topK = options.top_k ?? 0;
    const minP = options.min_p ?? 0;
    const repetitionPenalty = options.repetition_penalty ?? 1;
    check(Number.isFinite(temperature) && temperature >= 0, 'temperature must be a number >= 0');
    check(topP > 0 && topP <= 1, 'top_p must be in (0, 1]');
    check(Number.isInteger(topK) && topK >= 0, 'top_k must be an integer >= 0');
    check(minP >= 0 && minP <= 1, 'min_p must be in [0, 1]');
    check(Number.isFinite(repetitionPenalty) && repetitionPenalty > 0, 'repetition_penalty must be > 0');
    this.filter = { temperature, topK, topP, minP };
    this.repetitionPenalty = repetitionPenalty;
    this.random = createRng(options.seed ?? Math.floor(Math.random() * 2 ** 32));
  }

  /** Next token given the last position's logits and every id in the context so far. */
  sample(logits: Float32Array, history: ArrayLike<number>): number {
    let scores = logits;
    if (this.repetitionPenalty !== 1) {
      scores = logits.slice();
      applyRepetitionPenalty(scores, history, this.repetitionPenalty);
    }
    if (this.filter.temperature === 0) return argmax(scores);
    const { ids, probs } = filterDistribution(scores, this.filter);
    const u = this.random();
    let acc = 0;
    for (let i = 0; i < ids.length; i++) {
      acc += probs[i];
      if (u < acc) return ids[i];
    }
    return ids[ids.length - 1];
  }
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new Df11Error('bad-request', message);
}
