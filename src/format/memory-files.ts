/**
 * A model directory held in memory: a ModelFiles over a Map of file name → bytes, and the matching sink,
 * so a model can be compressed (or decompressed) on load without touching a disk.
 */
import { Df11Error } from '../errors.ts';
import { bufferSource, type ModelFiles } from './byte-source.ts';
import { concatChunks } from './safetensors.ts';

/** Where a writer puts the files it makes (a Map here, a directory in Node). */
export interface FileSink {
  /** Writes one whole file from its chunks. */
  write(name: string, chunks: Uint8Array[]): Promise<void>;
}

export function memoryFiles(files: Map<string, Uint8Array>, location = 'memory'): ModelFiles {
  return {
    location,
    list: async () => [...files.keys()].sort(),
    async open(name) {
      const data = files.get(name);
      if (!data) throw new Df11Error('missing-tensor', `${location}: no file '${name}'`);
      return bufferSource(data);
    },
  };
}

/** A sink that stores each written file, concatenated, in `files`. */
export function memorySink(files: Map<string, Uint8Array>): FileSink {
  return {
    write: async (name, chunks) => {
      files.set(name, concatChunks(chunks));
    },
  };
}
