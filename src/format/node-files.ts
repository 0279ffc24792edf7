import { mkdir, open, readdir, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { Df11Error } from '../errors.ts';
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
    open: async (name) => fileSource(insideDirectory(dir, name)),
    freshReads: true,
  };
}

/** `dir/name`, refusing a name that leads outside `dir` ('..', absolute paths). */
function insideDirectory(dir: string, name: string): string {
  const path = resolve(dir, name);
  const rel = relative(resolve(dir), path);
  if (typeof name !== 'string' || name === '' || rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
    throw new Df11Error('config', `${dir}: '${String(name)}' is not a file inside the model directory`);
  }
  return path;
}

/** Reads ranges of a file on demand; the file is opened per read so no handle outlives its use. */
export async function fileSource(path: string): Promise<ByteSource> {
  const info = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new Df11Error(e.code === 'ENOENT' ? 'missing-tensor' : 'storage', `${path}: ${e.message}`, { cause: e });
  });
  if (!info.isFile()) throw new Df11Error('storage', `${path} is not a file`);
  const { size } = info;
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
