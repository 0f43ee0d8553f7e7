/**
 * The memory outputs are made into as 8-bit images (image-threads.ts writes them, sharp encodes them),
 * given back once an image is encoded and handed out again to the next, as the blend sums' chunks are
 * (sum-chunks.ts): a 1920x1080 x4 image is 100 MB, and on the 2-core VM of
 * `npm run bench:runner-overhead` the first write to fresh memory cost the kernel a page fault every
 * 4 KiB, most of what the image threads did per job.
 *
 * A free buffer serves an image it can hold and is at most a quarter larger than (a view of its first
 * bytes): the job's memory estimate counts the image, not the buffer, so more would go uncounted. The
 * smallest that fits is taken, and a new one is made only when none does, so the free ones never hold
 * more than the images encoded at once did. The job service keeps them within what its memory budget
 * leaves beside the jobs in flight (`keepAtMost`), and they are let go after `idleMs` without a job
 * giving one back.
 */
export class RgbBuffers {
  private free: Buffer[] = []; // smallest first
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly idleMs = 30_000) {}

  /** `bytes` of shared memory, old contents and all: the image made into it writes every byte. */
  take(bytes: number): Buffer {
    // Free buffers are kept smallest first (give), so the first that fits is the smallest.
    const index = this.free.findIndex((buffer) => buffer.length >= bytes);
    const fit = this.free[index];
    if (!fit || fit.length > bytes * 1.25) return Buffer.from(new SharedArrayBuffer(bytes));
    this.free.splice(index, 1);
    return fit.subarray(0, bytes);
  }

  /** Once the image in `buffer` (from `take`) is encoded: nothing may read or write it after. */
  give(buffer: Buffer): void {
    this.free.push(Buffer.from(buffer.buffer));
    this.free.sort((a, b) => a.length - b.length);
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.trim(), this.idleMs).unref();
  }

  /** Lets free buffers go, the largest first, until they hold at most `bytes`. */
  keepAtMost(bytes: number): void {
    let kept = this.freeBytes;
    while (kept > Math.max(0, bytes)) kept -= (this.free.pop() as Buffer).length;
  }

  /** Lets every free buffer go. */
  trim(): void {
    this.free = [];
  }

  get freeBytes(): number {
    return this.free.reduce((total, buffer) => total + buffer.length, 0);
  }
}

/** The runner's: every job's 8-bit images are made here. */
export const rgbBuffers = new RgbBuffers();
