/** Typed download progress: bytes stored per file and in total, network rate over a sliding window, ETA. */

export interface DownloadProgress {
  /** The file whose bytes just changed. */
  file: string;
  /** Bytes of `file` stored (verified chunks; may drop back to 0 if the file has to be refetched). */
  fileBytesDone: number;
  fileBytesTotal: number;
  /** Bytes of the whole model stored, including what earlier sessions stored. */
  bytesDone: number;
  bytesTotal: number;
  /** Network rate over the last few seconds of this session. */
  bytesPerSecond: number;
  /** Seconds left at the current rate; null until a rate is known. */
  etaSeconds: number | null;
}

export type ProgressListener = (progress: DownloadProgress) => void;

/** Rate window: long enough to smooth chunk bursts, short enough to follow a changing network. */
const WINDOW_MS = 5000;
const MAX_SAMPLES = 256;

export class ProgressTracker {
  private readonly done = new Map<string, number>();
  private readonly sizes = new Map<string, number>();
  private readonly bytesTotal: number;
  private networkBytes = 0;
  /** (time ms, network bytes so far), oldest first. */
  private samples: Array<[number, number]> = [];

  constructor(
    files: ReadonlyArray<{ name: string; size: number }>,
    private readonly listener: ProgressListener | undefined,
    private readonly now: () => number = () => performance.now(),
  ) {
    for (const f of files) {
      this.sizes.set(f.name, f.size);
      this.done.set(f.name, 0);
    }
    this.bytesTotal = files.reduce((sum, f) => sum + f.size, 0);
    this.samples.push([this.now(), 0]);
  }

  get bytesDone(): number {
    let sum = 0;
    for (const v of this.done.values()) sum += v;
    return sum;
  }

  addNetworkBytes(n: number): void {
    this.networkBytes += n;
    const t = this.now();
    this.samples.push([t, this.networkBytes]);
    while (this.samples.length > MAX_SAMPLES || (this.samples.length > 2 && t - this.samples[1][0] > WINDOW_MS)) {
      this.samples.shift();
    }
  }

  /** Records how many bytes of `file` are stored; `quiet` skips the event (initial state). */
  setFileDone(file: string, bytes: number, quiet = false): void {
    this.done.set(file, bytes);
    if (!this.listener || quiet) return;
    const rate = this.rate();
    const bytesDone = this.bytesDone;
    this.listener({
      file,
      fileBytesDone: bytes,
      fileBytesTotal: this.sizes.get(file) ?? 0,
      bytesDone,
      bytesTotal: this.bytesTotal,
      bytesPerSecond: rate,
      etaSeconds: rate > 0 ? (this.bytesTotal - bytesDone) / rate : bytesDone === this.bytesTotal ? 0 : null,
    });
  }

  private rate(): number {
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    return t1 > t0 ? ((b1 - b0) * 1000) / (t1 - t0) : 0;
  }
}
