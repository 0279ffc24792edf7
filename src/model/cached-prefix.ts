import type { TokenGenerator } from './token-generator.ts';

/**
 * A generator with the token ids its KV cache holds, in order: a prompt that extends them feeds only the
 * tail (a chat turn re-sends the whole conversation), anything else starts the cache over.
 */
export class CachedPrefix {
  private ids: number[] = [];

  constructor(readonly generator: TokenGenerator) {}

  /** The ids in the cache, in order. */
  get tokens(): readonly number[] {
    return this.ids;
  }

  /** Feed `prompt` (only the part past the cached prefix when it extends it); the last position's logits and how many tokens were fed. */
  async feed(prompt: readonly number[], signal?: AbortSignal): Promise<{ logits: Float32Array; fed: number }> {
    let common = 0;
    while (common < this.ids.length && common < prompt.length && this.ids[common] === prompt[common]) common++;
    const fresh = common === this.ids.length && common < prompt.length ? prompt.slice(common) : prompt.slice();
    if (fresh.length === prompt.length) this.reset();
    const logits = await this.generator.prefill(fresh, signal);
    this.ids.push(...fresh);
    return { logits, fed: fresh.length };
  }

  /** Append one token; its logits. */
  async decode(id: number, signal?: AbortSignal): Promise<Float32Array> {
    const logits = await this.generator.decode(id, signal);
    this.ids.push(id);
    return logits;
  }

  /** After an abort or error mid-feed the cache may hold part of a step: then start over next time. */
  sync(): void {
    if (this.generator.position !== this.ids.length) this.reset();
  }

  reset(): void {
    this.generator.reset();
    this.ids = [];
  }
}
