import type { ByteSource, ModelFiles } from '../format/byte-source.ts';

/** `files` with `onRead(bytes, begin, end)` called on every buffer a read returns, before the caller gets it. */
export function tapReads(files: ModelFiles, onRead: (bytes: Uint8Array, begin: number, end: number) => void): ModelFiles {
  return {
    location: files.location,
    list: () => files.list(),
    async open(name) {
      const source = await files.open(name);
      const tapped: ByteSource = {
        size: source.size,
        async read(begin, end) {
          const bytes = await source.read(begin, end);
          onRead(bytes, begin, end);
          return bytes;
        },
      };
      return tapped;
    },
  };
}
