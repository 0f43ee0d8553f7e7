import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { FromRgbThread, ToRgbThread } from "./rgb-thread";
import { sumToRgb, type SumRows } from "./to-rgb";

/** Images smaller than this are made on the calling thread: about 15 ms, less than a round trip is worth. */
const THREADED_PIXELS = 1 << 20;

interface Band {
  thread: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * Threads that make blended images 8-bit, a band of rows each, so that the runner's thread does not:
 * a 1920x1080 x4 image took half a second of it (`npm run bench:runner-overhead`), and one thread
 * did all of it. The sums' chunks and the image are shared memory (sum-chunks.ts), so nothing is
 * copied. Threads start on first use and do not keep an idle process alive; one that dies fails the
 * images it was making and is started again for the next.
 */
export class RgbThreads {
  private readonly threads: (Worker | undefined)[];
  private readonly busy: number[];
  private readonly bands = new Map<number, Band>();
  private nextId = 0;

  /** `count`: the threads; 0 makes every image on the calling thread (as the runner did until 2026-12-05). */
  constructor(readonly count: number) {
    if (!Number.isInteger(count) || count < 0) throw new RangeError(`8-bit image threads: an integer from 0, not ${count}`);
    this.threads = new Array<Worker | undefined>(count).fill(undefined);
    this.busy = new Array<number>(count).fill(0);
  }

  /** The image as interleaved 8-bit RGB in `rgb`, shared memory (`sharedRgb`) for an image made on the threads. */
  async make(sum: SumRows, grey: boolean, rgb: Uint8Array): Promise<void> {
    const { width, height } = sum;
    if (this.count === 0 || width * height < THREADED_PIXELS) return sumToRgb(sum, grey, rgb, 0, height);
    const bands = Math.min(this.count, height);
    const edge = (i: number) => Math.floor((height * i) / bands);
    await Promise.all(Array.from({ length: bands }, (_, i) => this.post(i, { sum, grey, rgb, y0: edge(i), y1: edge(i + 1) })));
  }

  private post(index: number, band: Omit<ToRgbThread, "id">): Promise<void> {
    const thread = this.thread(index);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.bands.set(id, { thread: index, resolve, reject });
      this.busy[index] = (this.busy[index] ?? 0) + 1;
      thread.ref();
      thread.postMessage({ id, ...band } satisfies ToRgbThread);
    });
  }

  private thread(index: number): Worker {
    const existing = this.threads[index];
    if (existing) return existing;
    const thread = new Worker(new URL("./rgb-thread.mjs", import.meta.url));
    thread.on("message", ({ id, error }: FromRgbThread) => {
      const band = this.bands.get(id);
      if (!band) return;
      this.bands.delete(id);
      this.busy[index] = (this.busy[index] ?? 1) - 1;
      if (this.busy[index] === 0) thread.unref();
      if (error === undefined) band.resolve();
      else band.reject(new Error(`an 8-bit image thread failed: ${error}`));
    });
    const lost = (error: Error) => {
      if (this.threads[index] !== thread) return;
      this.threads[index] = undefined;
      this.busy[index] = 0;
      for (const [id, band] of this.bands) {
        if (band.thread !== index) continue;
        this.bands.delete(id);
        band.reject(error);
      }
    };
    thread.on("error", lost);
    thread.on("exit", (code) => lost(new Error(`an 8-bit image thread exited with code ${code}`)));
    thread.unref();
    this.threads[index] = thread;
    return thread;
  }

  /** Ends the threads; the next image starts them again. */
  async close(): Promise<void> {
    const threads = this.threads.filter((thread) => thread !== undefined);
    await Promise.all(threads.map((thread) => thread.terminate()));
  }
}

/** Shared memory for a `width` x `height` RGB image that RgbThreads may make. */
export function sharedRgb(width: number, height: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(width * height * 3));
}

/**
 * The runner's: a thread per spare core, up to 4 (bands of a 33-MP image take 100-150 ms each on
 * one core of the bench's CPU), at least one.
 */
export const rgbThreads = new RgbThreads(Math.max(1, Math.min(4, availableParallelism() - 1)));
