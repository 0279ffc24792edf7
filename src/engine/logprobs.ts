/**
 * OpenAI-style logprobs of completion tokens. They are log-softmax of the model's raw logits at that
 * position (before repetition/presence/frequency penalties, logit_bias, temperature and filters), i.e.
 * what the model itself assigns; vLLM reports the same by default.
 */
import type { TokenLogprob, TopLogprob } from './types.ts';

/** The text of one token, as the engine would print it alone. */
export type TokenText = (id: number) => string;

const utf8 = new TextEncoder();

/** log Σ exp(logits), computed stably.  logits: (vocabSize) */
export function logSumExp(logits: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  if (!(max > -Infinity)) return max;
  let z = 0;
  for (let i = 0; i < logits.length; i++) z += Math.exp(logits[i] - max);
  return max + Math.log(z);
}

/** The `top` most likely ids, by decreasing logit (lower id first on ties), in one pass with a small sorted list. */
export function topIds(logits: ArrayLike<number>, top: number): number[] {
  const best: number[] = [];
  if (top <= 0) return best;
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i];
    if (!(x > -Infinity)) continue;
    if (best.length === top && !(x > logits[best[top - 1]])) continue;
    let at = best.length === top ? top - 1 : best.length;
    while (at > 0 && x > logits[best[at - 1]]) at--;
    best.splice(at, 0, i);
    if (best.length > top) best.pop();
  }
  return best;
}

/** The logprob entry of token `id` sampled from `logits`, with `top` alternatives.  logits: (vocabSize) */
export function tokenLogprob(logits: ArrayLike<number>, id: number, top: number, text: TokenText): TokenLogprob {
  const lse = logSumExp(logits);
  const entry = (t: number): TopLogprob => {
    const token = text(t);
    return { token, logprob: logits[t] - lse, bytes: Array.from(utf8.encode(token)) };
  };
  return { ...entry(id), top_logprobs: topIds(logits, top).map(entry) };
}
