/**
 * Cuts generated text at the first stop string. Text that might be the start of a stop string is held
 * back until the next piece settles it, so a stop string is never partly emitted.
 */
export class StopStringMatcher {
  private pending = '';
  private stopped = false;

  constructor(private readonly stops: readonly string[]) {}

  get done(): boolean {
    return this.stopped;
  }

  /** Text that is safe to emit after adding `piece`; once a stop string is seen, `done` turns true. */
  push(piece: string): string {
    if (this.stopped) return '';
    const text = this.pending + piece;
    let cut = -1;
    for (const stop of this.stops) {
      const at = text.indexOf(stop);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.stopped = true;
      this.pending = '';
      return text.slice(0, cut);
    }
    const hold = this.heldSuffixLength(text);
    this.pending = text.slice(text.length - hold);
    return text.slice(0, text.length - hold);
  }

  /** The held-back text at the end of the stream. */
  flush(): string {
    const rest = this.stopped ? '' : this.pending;
    this.pending = '';
    return rest;
  }

  /** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
  private heldSuffixLength(text: string): number {
    let best = 0;
    for (const stop of this.stops) {
      for (let n = Math.min(stop.length - 1, text.length); n > best; n--) {
        if (text.endsWith(stop.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
