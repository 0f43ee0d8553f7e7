import { DomainError } from "@hvar/contract";
import { z } from "zod";
import type { ModelOutputs, RunSettings, TileModel, TileShape } from "../model/types";

export const SchedulerOptionsSchema = z.object({
  /** Most tiles in one model run. */
  batchSize: z.number().int().positive(),
  /** Bytes the tensors of one batch (inputs and all outputs, float32) may take; caps the batch. */
  memoryBudgetBytes: z.number().int().positive(),
  /**
   * The longest wait a new job may face, in tiles: those that will run before its last one, its own
   * included. Batches go round the jobs, so each job in flight runs at most as many tiles as the new
   * one before the new one ends: a small job fits beside a large one. A job over it is refused with 429.
   */
  maxQueuedTiles: z.number().int().positive(),
  /** A ceiling on the model's throughput (e.g. a GPU shared with other work); none when absent. */
  maxTilesPerSecond: z.number().positive().optional(),
});
export type SchedulerOptions = z.infer<typeof SchedulerOptionsSchema>;

/** A job's tiles as the scheduler sees them: filled on demand, so queued jobs hold no tensors. */
export interface TileJob {
  readonly tiles: number;
  /** What its tiles ask of the model; tiles of one batch share it. */
  readonly settings: RunSettings;
  /** The sides of every tile of the job: the model's T x T, or fitted to the image (tiling/plan.ts). */
  readonly shape: TileShape;
  /** Writes LR tile `index` as planar `[3, H, W]` at `dst[offset ..]`. */
  fill(index: number, dst: Float32Array, offset: number): void;
  /** Takes the outputs of tile `index`, found at position `slot` of the batch. */
  accept(index: number, outputs: ModelOutputs, slot: number): void;
}

export interface SchedulerObserver {
  batch?(tiles: number, seconds: number): void;
}

interface Pending {
  job: TileJob;
  next: number;
  done: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Bytes of one tile's tensors in a batch: lr + x1 (3T² each), x2 (12T²), x4 (48T²), and the noise. */
export function bytesPerTile(tile: number, tokens: number): number {
  return 4 * (3 * tile * tile * (1 + 1 + 4 + 16) + tokens);
}

/**
 * Runs the tiles of every job in flight through one model, one batch at a time. Batches mix jobs:
 * each batch takes one tile from each job in turn (round-robin), so a large image does not hold a
 * small one behind it. Tiles of one batch share their settings (temperature, clean-up) and a shape,
 * since the model takes one of each per run. The queue's bounds count work in tiles of the model's full side (`tile` x `tile`):
 * a fitted tile (tiling/plan.ts) counts for its share of that area, which is its share of the time.
 */
export class Scheduler {
  readonly maxBatch: number;
  private readonly maxQueuedTiles: number;
  private readonly maxTilesPerSecond: number;
  private readonly ring: Pending[] = [];
  private cursor = 0;
  /** LR pixels of the tiles admitted and not yet run (an integer: a drained queue is exactly 0). */
  private queuedPixels = 0;
  private pumping = false;
  private idleWaiters: (() => void)[] = [];
  /** Recent throughput in full tiles per second, for Retry-After; undefined until the first batch. */
  private tilesPerSecond: number | undefined;
  private readonly lr: Float32Array;
  private readonly noise: Float32Array;

  constructor(
    private readonly model: TileModel,
    options: SchedulerOptions,
    private readonly observer: SchedulerObserver = {},
    private readonly random: () => number = Math.random,
  ) {
    const { batchSize, memoryBudgetBytes, maxQueuedTiles, maxTilesPerSecond } = SchedulerOptionsSchema.parse(options);
    const fit = Math.floor(memoryBudgetBytes / bytesPerTile(model.tile, model.tokens));
    if (fit < 1) throw new Error(`memory budget of ${memoryBudgetBytes} bytes is below one tile of ${model.tile}px`);
    this.maxBatch = Math.min(batchSize, fit);
    this.maxQueuedTiles = maxQueuedTiles;
    this.maxTilesPerSecond = maxTilesPerSecond ?? Infinity;
    this.lr = new Float32Array(this.maxBatch * 3 * model.tile * model.tile);
    this.noise = new Float32Array(this.maxBatch * model.tokens);
  }

  /** Tiles admitted and not yet run, in full tiles (a fitted tile counts for its share of the area). */
  get queuedTiles(): number {
    return this.queuedPixels / this.model.tile ** 2;
  }

  /** LR pixels of one tile of `job`. */
  private static pixels(job: TileJob): number {
    return job.shape.height * job.shape.width;
  }

  /** `tiles` tiles of `shape` as tiles of the model's full side: their share of the work. */
  private full(tiles: number, shape: TileShape): number {
    return (tiles * shape.height * shape.width) / this.model.tile ** 2;
  }

  /**
   * Admits a job and resolves once all its tiles went through the model. Throws a 429 DomainError
   * at once when the job would wait longer than `maxQueuedTiles` (tilesUntilDone); an empty queue
   * takes any job, so no image
   * that passed the pixel limit can be refused forever.
   */
  submit(job: TileJob): Promise<void> {
    const { height, width } = job.shape;
    if (height > this.model.tile || width > this.model.tile) throw new RangeError(`tiles of ${height}x${width} do not fit the model's ${this.model.tile}px`);
    if (this.queuedPixels > 0 && this.tilesUntilDone(job.tiles, job.shape) > this.maxQueuedTiles) {
      const retryAfter = this.retryAfterSeconds();
      throw new DomainError({ kind: "limit_reached", code: "runner_busy", title: `The runner's queue is full (${Math.ceil(this.queuedTiles)} tiles); retry in ${retryAfter} s.`, retryAfterS: retryAfter });
    }
    if (job.tiles === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.ring.push({ job, next: 0, done: 0, resolve, reject });
      this.queuedPixels += job.tiles * Scheduler.pixels(job);
      void this.pump();
    });
  }

  /**
   * Withdraws a job: its tiles not yet run leave the queue at once, and its promise rejects with
   * `reason`. Tiles of it in the batch now running are dropped when the batch ends. False when the
   * job is not here (never submitted, or already ended).
   */
  cancel(job: TileJob, reason: unknown): boolean {
    const pending = this.ring.find((p) => p.job === job);
    if (!pending) return false;
    this.finish(pending, reason);
    return true;
  }

  /** Resolves when no job is in flight (for graceful shutdown). */
  idle(): Promise<void> {
    if (this.ring.length === 0 && !this.pumping) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Work, in full tiles, that would run before the last tile of a new job of `tiles` tiles of `shape`
   * (default: full ones), its own included: batches take one tile per job in turn, so a job in flight
   * runs no more than `tiles` of its own meanwhile.
   */
  tilesUntilDone(tiles: number, shape: TileShape = { height: this.model.tile, width: this.model.tile }): number {
    return this.ring.reduce((sum, p) => sum + this.full(Math.min(p.job.tiles - p.next, tiles), p.job.shape), this.full(tiles, shape));
  }

  /** Seconds until the current queue has likely drained, between 1 and 300. */
  retryAfterSeconds(): number {
    const rate = Math.min(this.tilesPerSecond ?? 10, this.maxTilesPerSecond);
    return Math.min(300, Math.max(1, Math.ceil(this.queuedTiles / rate)));
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.ring.length > 0) {
        const started = performance.now();
        const work = await this.runBatch(this.takeBatch());
        // Let I/O (HTTP requests, encodes) in between batches: the model run is the long part. Under
        // a throughput ceiling, while tiles wait, the pause lasts until the batch's share of time is over.
        const pauseMs = (1000 * work) / this.maxTilesPerSecond - (performance.now() - started);
        const paced = pauseMs > 0 && this.ring.length > 0;
        await new Promise((resolve) => (paced ? setTimeout(resolve, Math.ceil(pauseMs)) : setImmediate(resolve)));
      }
    } finally {
      this.pumping = false;
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private takeBatch(): { pending: Pending; index: number }[] {
    const batch: { pending: Pending; index: number }[] = [];
    this.cursor %= this.ring.length;
    const { settings, shape } = (this.ring[this.cursor] as Pending).job;
    let idleTurns = 0;
    // Go round the ring taking one tile per job until the batch is full or a whole turn adds nothing.
    while (batch.length < this.maxBatch && idleTurns < this.ring.length) {
      const pending = this.ring[this.cursor] as Pending;
      this.cursor = (this.cursor + 1) % this.ring.length;
      const { job } = pending;
      const alike = job.settings.temperature === settings.temperature && job.settings.cleanup === settings.cleanup && job.shape.height === shape.height && job.shape.width === shape.width;
      if (pending.next < job.tiles && alike) {
        batch.push({ pending, index: pending.next++ });
        idleTurns = 0;
      } else {
        idleTurns++;
      }
    }
    return batch;
  }

  /** Runs one batch; answers its work in full tiles. */
  private async runBatch(batch: { pending: Pending; index: number }[]): Promise<number> {
    const { tokens } = this.model;
    const n = batch.length;
    const { job } = (batch[0] as { pending: Pending }).pending;
    const { shape } = job;
    batch.forEach(({ pending, index }, slot) => pending.job.fill(index, this.lr, slot * 3 * shape.height * shape.width));
    for (let i = 0; i < n * tokens; i++) this.noise[i] = this.random();
    this.queuedPixels -= n * Scheduler.pixels(job);
    const work = this.full(n, shape);
    const started = performance.now();
    let outputs: ModelOutputs;
    try {
      outputs = await this.model.run(this.lr, this.noise, n, job.settings, shape);
    } catch (error) {
      for (const pending of new Set(batch.map((b) => b.pending))) this.finish(pending, error);
      return work;
    }
    const seconds = (performance.now() - started) / 1000;
    const rate = work / Math.max(seconds, 1e-6);
    this.tilesPerSecond = this.tilesPerSecond === undefined ? rate : 0.8 * this.tilesPerSecond + 0.2 * rate;
    this.observer.batch?.(n, seconds);
    for (const [slot, { pending, index }] of batch.entries()) {
      // Blending one tile's outputs takes tens of milliseconds on a CPU: requests are answered in between.
      if (slot > 0) await new Promise((resolve) => setImmediate(resolve));
      if (!this.ring.includes(pending)) continue;
      try {
        pending.job.accept(index, outputs, slot);
      } catch (error) {
        this.finish(pending, error);
        continue;
      }
      if (++pending.done === pending.job.tiles) this.finish(pending);
    }
    return work;
  }

  private finish(pending: Pending, error?: unknown): void {
    const at = this.ring.indexOf(pending);
    if (at < 0) return;
    this.ring.splice(at, 1);
    if (at < this.cursor) this.cursor--;
    // Tiles of a failed or withdrawn job that were never run leave the queue with it.
    this.queuedPixels -= (pending.job.tiles - pending.next) * Scheduler.pixels(pending.job);
    if (error === undefined) pending.resolve();
    else pending.reject(error);
  }
}
