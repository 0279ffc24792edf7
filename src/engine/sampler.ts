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

/**
 * OpenAI presence/frequency penalties, in place: a token that occurs `c > 0` times in the completion
 * so far loses `c · frequency + presence` from its logit.  counts: token id → occurrences.
 */
export function applyOccurrencePenalties(logits: Float32Array, counts: ReadonlyMap<number, number>, presence: number, frequency: number): void {
  for (const [id, c] of counts) logits[id] -= c * frequency + presence;
}

/** OpenAI logit_bias, in place: each listed token's logit gets its bias added. */
export function applyLogitBias(logits: Float32Array, bias: ReadonlyMap<number, number>): void {
  for (const [id, b] of bias) logits[id] += b;
}

/** logit_bias keys are token ids written as strings (JSON object keys); values are in [-100, 100]. */
export function parseLogitBias(bias: Record<string, number> | undefined, vocabSize?: number): Map<number, number> {
  const out = new Map<number, number>();
  if (bias === undefined || bias === null) return out;
  check(typeof bias === 'object' && !Array.isArray(bias), 'logit_bias must be an object of token id → bias');
  for (const [key, value] of Object.entries(bias)) {
    const id = Number(key);
    check(/^\d+$/.test(key) && Number.isSafeInteger(id), `logit_bias: key ${JSON.stringify(key)} is not a token id`);
    check(vocabSize === undefined || id < vocabSize, `logit_bias: token id ${id} is outside the vocabulary (${vocabSize} tokens)`);
    check(typeof value === 'number' && value >= -100 && value <= 100, `logit_bias: the bias of token ${id} must be a number in [-100, 100]`);
    out.set(id, value);
  }
  return out;
}

/** Index of the largest logit (the first one on ties, like torch.argmax). */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** Logit-gap buckets (1 nat wide) for the prefilter; gaps past the last share it. */
const BUCKETS = 64;

/**
 * Temperature, then top-k, top-p and min-p, in the order and with the semantics of HF transformers'
 * logits warpers: top-k keeps ties with the k-th value; top-p keeps the smallest most-likely set whose
 * mass reaches p (the token that crosses p is kept); min-p drops tokens below min_p × the top probability.
 * At least one token always survives.
 *
 * Sorting a 150k vocabulary per token costs tens of ms, so a linear pass first buckets tokens by their
 * gap to the top logit and drops whole buckets no filter can keep; only the rest is sorted.
 */
export function filterDistribution(logits: ArrayLike<number>, o: FilterOptions): Distribution {
  const n = logits.length;
  const scaled = new Float64Array(n);
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = (scaled[i] = logits[i] / o.temperature);
    if (x > max) max = x;
  }
  if (!(max > -Infinity)) throw new Df11Error('bad-request', 'every logit is -Infinity or NaN; nothing to sample');

  // pass 2: per gap bucket, how many tokens and how much unnormalised mass
  const count = new Float64Array(BUCKETS);
  const mass = new Float64Array(BUCKETS);
  let z = 0;
  for (let i = 0; i < n; i++) {
    const x = scaled[i];
    if (!(x > -Infinity)) continue;
    const e = Math.exp(x - max);
    const b = Math.min(BUCKETS - 1, Math.floor(max - x));
    z += e;
    count[b]++;
    mass[b] += e;
  }
  const last = lastUsefulBucket(count, mass, z, o);

  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = scaled[i];
    if (x > -Infinity && Math.floor(max - x) <= last) ids.push(i);
  }
  const value = (id: number) => scaled[id];
  ids.sort((a, b) => value(b) - value(a) || a - b);

  let m = ids.length;
  if (o.topK > 0 && o.topK < m) {
    const kth = value(ids[o.topK - 1]);
    m = o.topK;
    while (m < ids.length && value(ids[m]) >= kth) m++;
  }
  // probabilities: over the top-k survivors when top-k is on, else over the whole vocabulary
  let probs = ids.slice(0, m).map((id) => Math.exp(value(id) - max));
  const norm = o.topK > 0 ? probs.reduce((a, b) => a + b, 0) : z;
  probs = probs.map((p) => p / norm);

  if (o.topP < 1) {
    // keep token i while the mass of it and everything less likely exceeds 1 - p
    let tail = 1;
    let keep = 0;
    while (keep < m && tail > 1 - o.topP) tail -= probs[keep++];
    m = Math.max(keep, 1);
  }
  if (o.minP > 0) {
    const threshold = o.minP * probs[0];
    let keep = 1;
    while (keep < m && probs[keep] >= threshold) keep++;
    m = keep;
  }

  probs = probs.slice(0, m);
  const kept = probs.reduce((a, b) => a + b, 0);
  return { ids: ids.slice(0, m), probs: probs.map((p) => p / kept) };
}

/** The last gap bucket that may hold a surviving token (a bucket of margin against rounding). */
function lastUsefulBucket(count: Float64Array, mass: Float64Array, z: number, o: FilterOptions): number {
  if (o.topK > 0) {
    // top-k renormalises, so top-p and min-p must see every top-k survivor: cut at the k-th token only
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) if ((seen += count[b]) >= o.topK) return b;
    return BUCKETS - 1;
  }
  let last = BUCKETS - 1;
  if (o.topP < 1) {
    // a token whose bucket and everything past it weigh at most 1 - p is dropped by top-p
    let tail = 0;
    for (let b = BUCKETS - 1; b > 0; b--) {
      tail += mass[b];
      if (tail > (1 - o.topP) * z) break;
      last = b;
    }
  }
  // min-p drops tokens whose gap to the top exceeds -ln(min_p)
  if (o.minP > 0) last = Math.min(last, Math.floor(-Math.log(o.minP)) + 1);
  return last;
}

/**
 * Picks the next token from logits; one per request (it owns the seeded PRNG and counts the tokens it
 * picked, which are the completion the presence/frequency penalties look at). Logits are processed in
 * this order: repetition penalty (HF, over the whole context), presence/frequency penalties (OpenAI, over
 * the completion), logit_bias, then temperature and the top-k/top-p/min-p filters.
 */
export class Sampler {
  private readonly filter: FilterOptions;
  private readonly repetitionPenalty: number;
  private readonly presencePenalty: number;
  private readonly frequencyPenalty: number;
  private readonly logitBias: Map<number, number>;
  /** Completion token id → times picked. */
  private readonly counts = new Map<number, number>();
  private readonly random: () => number;

  /** `vocabSize`, when known, lets logit_bias ids be checked before anything runs. */
  constructor(options: SamplingOptions = {}, vocabSize?: number) {
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
    const presence = options.presence_penalty ?? 0;
    const frequency = options.frequency_penalty ?? 0;
    check(typeof presence === 'number' && presence >= -2 && presence <= 2, 'presence_penalty must be in [-2, 2]');
    check(typeof frequency === 'number' && frequency >= -2 && frequency <= 2, 'frequency_penalty must be in [-2, 2]');
    this.filter = { temperature, topK, topP, minP };
    this.repetitionPenalty = repetitionPenalty;
    this.presencePenalty = presence;
    this.frequencyPenalty = frequency;
    this.logitBias = parseLogitBias(options.logit_bias, vocabSize);
    this.random = createRng(options.seed ?? Math.floor(Math.random() * 2 ** 32));
  }

  /** Next token given the last position's logits and every id in the context so far (`logits` is not changed). */
  sample(logits: Float32Array, history: ArrayLike<number>): number {
    const id = this.pick(this.process(logits, history));
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
    return id;
  }

  /** The logits after the penalties and the bias (a copy when any applies). */
  private process(logits: Float32Array, history: ArrayLike<number>): Float32Array {
    const penalised = this.presencePenalty !== 0 || this.frequencyPenalty !== 0;
    if (this.repetitionPenalty === 1 && !penalised && this.logitBias.size === 0) return logits;
    for (const id of this.logitBias.keys()) {
      check(id < logits.length, `logit_bias: token id ${id} is outside the vocabulary (${logits.length} tokens)`);
    }
    const scores = logits.slice();
    applyRepetitionPenalty(scores, history, this.repetitionPenalty);
    if (penalised) applyOccurrencePenalties(scores, this.counts, this.presencePenalty, this.frequencyPenalty);
    applyLogitBias(scores, this.logitBias);
    return scores;
  }

  private pick(scores: Float32Array): number {
    if (this.filter.temperature === 0) return argmax(scores);
    const { temperature, topK, topP, minP } = this.filter;
    if (topK === 0 && topP === 1 && minP === 0) return drawSoftmax(scores, temperature, this.random());
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

/** A draw from softmax(logits / temperature) without sorting (no filter to apply). */
function drawSoftmax(logits: Float32Array, temperature: number, u: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] / temperature);
  let z = 0;
  for (let i = 0; i < logits.length; i++) z += Math.exp(logits[i] / temperature - max);
  if (!(z > 0)) throw new Df11Error('bad-request', 'every logit is -Infinity or NaN; nothing to sample');
  const target = u * z;
  let acc = 0;
  let lastFinite = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp(logits[i] / temperature - max);
    if (!(e > 0)) continue;
    lastFinite = i;
    acc += e;
    if (target < acc) return i;
  }
  return lastFinite;
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new Df11Error('bad-request', message);
}
