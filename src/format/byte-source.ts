/**
 * Random access to the bytes of one file without holding all of it: an ArrayBuffer, a Blob
 * (browser File or IndexedDB-backed), a Node file handle, or chunked IndexedDB records.
 */
export interface ByteSource {
  readonly size: number;
  /** Bytes [begin, end). May return a view into shared memory: copy before mutating. */
  read(begin: number, end: number): Promise<Uint8Array>;
}

/** The files of one model directory (HF or DF11 layout), wherever they live. */
export interface ModelFiles {
  /** Human-readable origin for messages ("models/stories-15m", a URL, "IndexedDB: …"). */
  readonly location: string;
  /** File names (relative paths) present in the directory. */
  list(): Promise<string[]>;
  /** Throws Df11Error('missing-tensor'…) style errors are the caller's job; this throws if absent. */
  open(name: string): Promise<ByteSource>;
  /**
   * Every read returns a new buffer the caller owns (a file read, a download), never a view into memory
   * kept here: a reader may hand it to another thread as a transfer instead of copying it.
   */
  readonly freshReads?: boolean;
}

export function bufferSource(data: ArrayBuffer | Uint8Array): ByteSource {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  return {
    size: bytes.byteLength,
    read: async (begin, end) => bytes.subarray(begin, end),
  };
}

export function blobSource(blob: Blob): ByteSource {
  return {
    size: blob.size,
    read: async (begin, end) => new Uint8Array(await blob.slice(begin, end).arrayBuffer()),
  };
}

export async function readText(files: ModelFiles, name: string): Promise<string> {
  const source = await files.open(name);
  return new TextDecoder().decode(await source.read(0, source.size));
}

export async function readJson<T = unknown>(files: ModelFiles, name: string): Promise<T> {
  return JSON.parse(await readText(files, name)) as T;
}
