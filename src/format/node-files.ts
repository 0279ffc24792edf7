import { mkdir, open, readdir, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type { ByteSource, ModelFiles } from './byte-source.ts';
import type { FileSink } from './memory-files.ts';

/** A model directory on disk (Node only). */
export function directoryFiles(dir: string): ModelFiles {
  return {
    location: dir,
    async list() {
      const out: string[] = [];
      const walk = async (d: string): Promise<void> => {
        for (const entry of await readdir(d, { withFileTypes: true })) {
          const path = join(d, entry.name);
          if (entry.isDirectory()) await walk(path);
          else out.push(relative(dir, path));
        }
      };
      await walk(dir);
      return out.sort();
    },
    open: (name) => fileSource(join(dir, name)),
  };
}

/** Reads ranges of a file on demand; the file is opened per read so no handle outlives its use. */
export async function fileSource(path: string): Promise<ByteSource> {
  const { size } = await stat(path);
  return {
    size,
    async read(begin, end) {
      const handle = await open(path, 'r');
      try {
        const out = new Uint8Array(end - begin);
        let done = 0;
        while (done < out.length) {
          const { bytesRead } = await handle.read(out, done, out.length - done, begin + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
        return done === out.length ? out : out.subarray(0, done);
      } finally {
        await handle.close();
      }
    },
  };
}

/** A FileSink writing into a directory on disk (created if needed), chunk by chunk (Node only). */
export function directorySink(dir: string): FileSink {
  return {
    async write(name, chunks) {
      const path = join(dir, name);
      await mkdir(dirname(path), { recursive: true });
      const handle = await open(path, 'w');
      try {
        for (const chunk of chunks) {
          let done = 0;
          while (done < chunk.byteLength) done += (await handle.write(chunk, done)).bytesWritten;
        }
      } finally {
        await handle.close();
      }
    },
  };
}
