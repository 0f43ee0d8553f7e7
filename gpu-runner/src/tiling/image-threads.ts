import { Worker } from "node:worker_threads";
import { CPUS } from "../cpus";
import { noiseLevel } from "../image/noise";
import type { FromImageThread, ImageWork, ToImageThread } from "./image-thread";
import { sumToRgb, type SumRows } from "./to-rgb";

/** Images smaller than this are made 8-bit on the calling thread: about 15 ms, less than a round trip is worth. */
const THREADED_PIXELS = 1 << 20;

interface Pending {
  thread: number;
  /** With the noise level, for a noise read. */
  resolve: (level?: number) => void;
  reject: (error: Error) => void;
}

/**
 * Threads for a job's image work that is not the model's, so that the runner's thread stays free: the
 * 8-bit image of each scale, a band of rows per thread (a 1920x1080 x4 image took half a second of the
 * runner's thread: `npm run bench:runner-overhead`), and the noise read of `cleanup=auto` (up to 120
 * ms). The sums' chunks and the 8-bit image are shared memory (sum-chunks.ts), so nothing is copied
 * there. Threads start on first use and do not keep an idle process alive; one that dies fails the
 * work it had and is started again for the next.
 */
export class ImageThreads {
  private readonly threads: (Worker | undefined)[];
  private readonly busy: number[];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  /** `count`: the threads; 0 does all the work on the calling thread (as the runner did until 2026-12-05). */
  constructor(readonly count: number) {
    if (!Number.isInteger(count) || count < 0) throw new RangeError(`image threads: an integer from 0, not ${count}`);
    this.threads = new Array<Worker | undefined>(count).fill(undefined);
    this.busy = new Array<number>(count).fill(0);
  }

  /** The blended image as interleaved 8-bit RGB in `rgb`, shared memory (`sharedRgb`) for an image made on the threads. */
  async rgb(sum: SumRows, grey: boolean, rgb: Uint8Array): Promise<void> {
    const { width, height } = sum;
    if (this.count === 0 || width * height < THREADED_PIXELS) return sumToRgb(sum, grey, rgb, 0, height);
    const bands = Math.min(this.count, height);
    const edge = (i: number) => Math.floor((height * i) / bands);
    await Promise.all(Array.from({ length: bands }, (_, i) => this.post(i, { kind: "rgb", sum, grey, rgb, y0: edge(i), y1: edge(i + 1) })));
  }

  /** `noiseLevel` of a decoded image (interleaved 8-bit RGB), read on the least busy thread. */
  async noiseLevel(rgb: Uint8Array, width: number, height: number): Promise<number> {
    if (this.count === 0) return noiseLevel(rgb, width, height);
    const idlest = this.busy.indexOf(Math.min(...this.busy));
    return (await this.post(idlest, { kind: "noise", rgb, width, height })) ?? 0;
  }

  /** Ends the threads; the next work starts them again. */
  async close(): Promise<void> {
    await Promise.all(this.threads.filter((thread) => thread !== undefined).map((thread) => thread.terminate()));
  }

  private post(index: number, work: ImageWork): Promise<number | undefined> {
    const thread = this.thread(index);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { thread: index, resolve, reject });
      this.busy[index] = (this.busy[index] ?? 0) + 1;
      thread.ref();
      thread.postMessage({ id, work } satisfies ToImageThread);
    });
  }

  private thread(index: number): Worker {
    const existing = this.threads[index];
    if (existing) return existing;
    const thread = new Worker(new URL("./image-thread.mjs", import.meta.url));
    thread.on("message", (reply: FromImageThread) => {
      const pending = this.pending.get(reply.id);
      if (!pending) return;
      this.pending.delete(reply.id);
      this.busy[index] = (this.busy[index] ?? 1) - 1;
      if (this.busy[index] === 0) thread.unref();
      if (reply.error === undefined) pending.resolve(reply.level);
      else pending.reject(new Error(`an image thread failed: ${reply.error}`));
    });
    const lost = (error: Error) => {
      if (this.threads[index] !== thread) return;
      this.threads[index] = undefined;
      this.busy[index] = 0;
      for (const [id, pending] of this.pending) {
        if (pending.thread !== index) continue;
        this.pending.delete(id);
        pending.reject(error);
      }
    };
    thread.on("error", lost);
    thread.on("exit", (code) => lost(new Error(`an image thread exited with code ${code}`)));
    thread.unref();
    this.threads[index] = thread;
    return thread;
  }
}

/** Shared memory for a `width` x `height` RGB image that ImageThreads may make. */
export function sharedRgb(width: number, height: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(width * height * 3));
}

/**
 * The runner's: a thread per spare CPU (cpus.ts), up to 4 (bands of a 33-MP image take 100-150 ms each on
 * one core of the bench's CPU), at least one.
 */
export const imageThreads = new ImageThreads(Math.max(1, Math.min(4, CPUS - 1)));
