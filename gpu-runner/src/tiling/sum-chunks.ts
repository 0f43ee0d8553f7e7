/**
 * Blend sums in float32 chunks of one size, given back when a job's images are made and handed out
 * again to the next job, whatever its image size. A job's sums are large (400 MB for 1920x1080 at x4),
 * and the first write to fresh memory costs the kernel a page fault every 4 KiB: on the 2-core VM of
 * `npm run bench:runner-overhead`, faults were half of the runner's own work per job
 * (four fifths of blending).
 *
 * Chunks are shared memory, so that image-threads.ts makes the 8-bit image from them without a copy.
 *
 * A sum takes at most half a chunk more than its size: 4 MiB per scale of a job, beside the 100s of MB
 * of a sum that uses chunks.
 *
 * A chunk is made only when none is free, so the free ones never outnumber what the jobs' sums held at
 * their peak. The job service keeps them within what its memory budget leaves beside the jobs in flight
 * (`keepAtMost`), and they are let go after `idleMs` without a job giving any back, so that an idle
 * runner returns to its size at rest.
 */
export class SumChunks {
  private readonly free: Float32Array[] = [];
  private idleTimer: NodeJS.Timeout | undefined;

  /** `chunkLength`: floats per chunk (the default is 8 MiB); `idleMs`: how long free chunks are kept. */
  constructor(
    readonly chunkLength = 1 << 21,
    private readonly idleMs = 30_000,
  ) {}

  /**
   * Zeroed memory for `length` floats: a chunk if `length` fills more than half of one, else (a small
   * image's sum, the last rows of a large one, a row longer than a chunk) an array of its own, never kept.
   */
  take(length: number): Float32Array {
    if (length <= this.chunkLength / 2 || length > this.chunkLength) return shared(length);
    const reused = this.free.pop();
    return reused ? reused.fill(0) : shared(this.chunkLength);
  }

  give(chunks: Iterable<Float32Array>): void {
    for (const chunk of chunks) if (chunk.length === this.chunkLength) this.free.push(chunk);
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.trim(), this.idleMs).unref();
  }

  /** Lets free chunks go until they hold at most `bytes`. */
  keepAtMost(bytes: number): void {
    this.free.length = Math.min(this.free.length, Math.max(0, Math.floor(bytes / (this.chunkLength * 4))));
  }

  /** Lets every free chunk go. */
  trim(): void {
    this.free.length = 0;
  }

  get freeBytes(): number {
    return this.free.length * this.chunkLength * 4;
  }
}

/** Zeroed floats in shared memory, which ImageThreads read without a copy. */
function shared(length: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(4 * length));
}

/** The runner's: every job's blend sums come from here. */
export const sumChunks = new SumChunks();
