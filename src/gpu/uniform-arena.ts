/**
 * Uniform parameter blocks of every bound kernel on a device, packed into a few shared 64 KiB uniform
 * buffers with a CPU mirror. A kernel packs its params into its slot of the mirror while commands are
 * recorded; `flush` writes the changed bytes of each buffer with one queue.writeBuffer before the commands
 * are submitted (Gpu.submit). A decode step changes a few dozen slots (positions, plans): one write per
 * submit instead of one per dispatch, which on the H200 was a large share of a step's recording time.
 */

/** Slot stride: minUniformBufferOffsetAlignment is at most 256 on every device (WebGPU spec). */
export const UNIFORM_SLOT_BYTES = 256;
/** Slots per buffer: 64 KiB, the spec's default maxUniformBufferBindingSize. */
const PAGE_SLOTS = 256;

/** A kernel's block: bind `buffer` at `offset`; pack into `view` at `offset`, then `touch`. */
export interface UniformSlot {
  readonly buffer: GPUBuffer;
  readonly offset: number;
  readonly view: DataView;
  /** Marks the slot's bytes as changed since the last flush. */
  touch(): void;
  /** Returns the slot to the arena (the kernel is destroyed). */
  release(): void;
}

interface Page {
  buffer: GPUBuffer;
  mirror: Uint8Array; // the buffer's contents as the next flush will leave them
  view: DataView;
  free: number[]; // free slot indices
  dirtyLo: number; // changed byte range [dirtyLo, dirtyHi), empty when dirtyLo >= dirtyHi
  dirtyHi: number;
}

/** What the arena needs of its Gpu (gpu.ts owns the arena). */
interface ArenaDevice {
  readonly device: GPUDevice;
  createBuffer(descriptor: GPUBufferDescriptor): Promise<GPUBuffer>;
}

export class UniformArena {
  private readonly pages: Page[] = [];

  constructor(private readonly gpu: ArenaDevice) {}

  /** A slot of UNIFORM_SLOT_BYTES for a params block of at most that size. */
  async slot(label: string): Promise<UniformSlot> {
    const page = this.pages.find((p) => p.free.length > 0) ?? (await this.addPage(label));
    const index = page.free.pop()!;
    const offset = index * UNIFORM_SLOT_BYTES;
    let released = false;
    return {
      buffer: page.buffer,
      offset,
      view: page.view,
      touch: () => {
        page.dirtyLo = Math.min(page.dirtyLo, offset);
        page.dirtyHi = Math.max(page.dirtyHi, offset + UNIFORM_SLOT_BYTES);
      },
      release: () => {
        if (released) return;
        released = true;
        page.free.push(index);
      },
    };
  }

  /** Write every changed byte range to its buffer (before the submit of commands that read them). */
  flush(): void {
    for (const page of this.pages) {
      if (page.dirtyLo >= page.dirtyHi) continue;
      this.gpu.device.queue.writeBuffer(page.buffer, page.dirtyLo, page.mirror, page.dirtyLo, page.dirtyHi - page.dirtyLo);
      page.dirtyLo = Infinity;
      page.dirtyHi = 0;
    }
  }

  private async addPage(label: string): Promise<Page> {
    const bytes = PAGE_SLOTS * UNIFORM_SLOT_BYTES;
    const buffer = await this.gpu.createBuffer({ label: `uniform params (${label}, ...)`, size: bytes, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    const mirror = new Uint8Array(bytes);
    // Slots are handed out from index 0 up, so one layer's kernels sit together and its flush writes one short range.
    const page: Page = { buffer, mirror, view: new DataView(mirror.buffer), free: Array.from({ length: PAGE_SLOTS }, (_, i) => PAGE_SLOTS - 1 - i), dirtyLo: Infinity, dirtyHi: 0 };
    this.pages.push(page);
    return page;
  }
}
