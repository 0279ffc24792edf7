/**
 * Writes a model made on this machine (the DF11 copy of a BF16 download, compressed here) into the store,
 * one whole file at a time, in the same records a download makes: chunk records with their SHA-256, then
 * the file's entry in the manifest. A file is there once its entry is; an interrupted run leaves the files
 * written so far (`has`), so the caller resumes at file granularity (a DF11 unit is one file).
 */
import type { FileSink } from '../format/memory-files.ts';
import { chunksLength } from '../format/safetensors.ts';
import type { Records, StoredManifest } from './records.ts';
import { Sha256, sha256Native, toHex } from './sha256.ts';

export interface StoredModelWriter extends FileSink {
  /** Whether `name` is already stored completely. */
  has(name: string): boolean;
  /** Marks the model complete (after every file is written). */
  complete(): Promise<void>;
}

export async function modelWriter(records: Records, id: string, sourceUrl: string, chunkBytes: number): Promise<StoredModelWriter> {
  const manifest: StoredManifest = (await records.getManifest(id)) ?? {
    version: 1,
    id,
    sourceUrl,
    chunkBytes,
    files: [],
    state: 'downloading',
    updatedAt: Date.now(),
  };
  await records.putManifest(manifest);
  let manifestWrites = Promise.resolve();
  /** Manifest updates one after another, each writing the latest state. */
  const saveManifest = (): Promise<void> => (manifestWrites = manifestWrites.then(() => records.putManifest({ ...manifest, files: [...manifest.files], updatedAt: Date.now() })));

  return {
    has: (name) => manifest.files.some((f) => f.name === name && f.sha256 !== null),

    async write(name, chunks) {
      const size = chunksLength(chunks);
      const data = new Uint8Array(size);
      let at = 0;
      for (const c of chunks) {
        data.set(c, at);
        at += c.byteLength;
      }
      manifest.files = manifest.files.filter((f) => f.name !== name);
      await records.deleteFileChunks(id, name);
      const n = Math.ceil(size / manifest.chunkBytes);
      const chunkHashes = new Uint8Array(n * 32);
      const hasher = new Sha256();
      for (let i = 0; i < n; i++) {
        const piece = data.slice(i * manifest.chunkBytes, Math.min((i + 1) * manifest.chunkBytes, size));
        const digest = await sha256Native(piece);
        chunkHashes.set(digest, i * 32);
        hasher.update(piece);
        await records.putChunk(id, name, i, { data: piece.buffer, sha256: digest.slice().buffer, hashAfter: null });
      }
      const sha256 = toHex(hasher.digest());
      manifest.files.push({ name, size, expectedSha256: sha256, sha256, chunkHashes: chunkHashes.buffer });
      await saveManifest();
    },

    async complete() {
      manifest.state = 'complete';
      await saveManifest();
    },
  };
}
