import { describe, expect, it } from "vitest";
import type { ModelOutputs, RunSettings } from "../../gpu-runner/src/model/types";
import { DomainError } from "@hvar/contract";
import { bytesPerTile, Scheduler, type TileJob } from "../../gpu-runner/src/scheduler/scheduler";
import { nearestModel } from "./helpers";

/** A job whose tiles carry its name, so the order they reach the model shows up in `seen`. */
function job(name: number, tiles: number, seen: number[], temperature = 0, side = 4, cleanup = 1): TileJob & { accepted: number[] } {
  const accepted: number[] = [];
  return {
    tiles,
    settings: { temperature, cleanup },
    shape: { height: side, width: side },
    accepted,
    fill: (_index, dst, offset) => void dst.fill(name, offset, offset + 3 * side * side),
    accept: (index, outputs: ModelOutputs, slot) => {
      seen.push(outputs.x1[slot * 3 * side * side] as number);
      accepted.push(index);
    },
  };
}

interface Run {
  n: number;
  settings: RunSettings;
  /** performance.now() when the scheduler started the run. */
  at: number;
  /** Lets the run return its outputs. */
  finish(): void;
  /** Makes the run throw, as a lost device would. */
  fail(error: Error): void;
}

/**
 * A model whose runs the test drives: `nextRun()` resolves when the scheduler starts a run (a batch
 * was formed), and the run returns only once the test calls its `finish()` (or throws at `fail()`).
 */
function drivenModel() {
  const started: Run[] = [];
  const waiting: ((run: Run) => void)[] = [];
  const model = nearestModel(4, (n, settings) => {
    return new Promise<void>((finish, fail) => {
      const run = { n, settings, at: performance.now(), finish, fail };
      const waiter = waiting.shift();
      if (waiter) waiter(run);
      else started.push(run);
    });
  });
  const nextRun = (): Promise<Run> => {
    const run = started.shift();
    return run ? Promise.resolve(run) : new Promise((resolve) => waiting.push(resolve));
  };
  return { model, nextRun };
}

const options = { batchSize: 4, memoryBudgetBytes: 1 << 30, maxQueuedTiles: 100 };

describe("Scheduler", () => {
  it("batches tiles up to the batch size", async () => {
    const model = nearestModel(4);
    const seen: number[] = [];
    await new Scheduler(model, options).submit(job(1, 10, seen));
    expect(model.runs).toEqual([4, 4, 2]);
    expect(seen).toHaveLength(10);
  });

  it("caps the batch by the memory budget", () => {
    const scheduler = new Scheduler(nearestModel(4), { ...options, memoryBudgetBytes: 3 * bytesPerTile(4, 4) });
    expect(scheduler.maxBatch).toBe(3);
  });

  it("refuses a budget below one tile at construction", () => {
    expect(() => new Scheduler(nearestModel(4), { ...options, memoryBudgetBytes: 100 })).toThrow(/memory budget/);
  });

  it("mixes jobs in one batch, round-robin, so a small job is not stuck behind a large one", async () => {
    const { model, nextRun } = drivenModel();
    const scheduler = new Scheduler(model, options);
    const seen: number[] = [];
    const big = scheduler.submit(job(1, 8, seen));
    const first = await nextRun();
    // The first batch was formed while only the big job was known; the next one mixes both.
    const small = scheduler.submit(job(2, 2, seen));
    first.finish();
    (await nextRun()).finish();
    (await nextRun()).finish();
    await Promise.all([big, small]);
    expect(model.runs).toEqual([4, 4, 2]);
    expect(seen).toEqual([1, 1, 1, 1, 1, 2, 1, 2, 1, 1]);
  });

  it.each([
    ["temperatures", { temperature: 0, cleanup: 1 }, { temperature: 0.7, cleanup: 1 }],
    ["clean-up strengths", { temperature: 0, cleanup: 1 }, { temperature: 0, cleanup: 0.25 }],
  ] as const)("keeps tiles of different %s in different batches, each run with its own", async (_what, a, b) => {
    const { model, nextRun } = drivenModel();
    const scheduler = new Scheduler(model, options);
    const seen: number[] = [];
    const runs = Promise.all([scheduler.submit(job(1, 2, seen, a.temperature, 4, a.cleanup)), scheduler.submit(job(2, 2, seen, b.temperature, 4, b.cleanup))]);
    const first = await nextRun();
    first.finish();
    const second = await nextRun();
    second.finish();
    await runs;
    expect([first, second].map((r) => [r.n, r.settings])).toEqual([
      [2, a],
      [2, b],
    ]);
    expect(seen).toEqual([1, 1, 2, 2]);
  });

  it("keeps tiles of different shapes in different batches, each run at its own shape", async () => {
    const shapes: number[] = [];
    const model = nearestModel(4);
    const run = model.run.bind(model);
    model.run = (lr, noise, n, settings, shape) => (shapes.push(shape?.width ?? 0), run(lr, noise, n, settings, shape));
    const seen: number[] = [];
    const scheduler = new Scheduler(model, options);
    await Promise.all([scheduler.submit(job(1, 2, seen, 0, 4)), scheduler.submit(job(2, 2, seen, 0, 2))]);
    expect(model.runs).toEqual([2, 2]);
    expect(shapes).toEqual([4, 2]);
    expect(seen).toEqual([1, 1, 2, 2]);
  });

  it("refuses a job whose tiles are larger than the model's", () => {
    expect(() => new Scheduler(nearestModel(4), options).submit(job(1, 1, [], 0, 8))).toThrow(RangeError);
  });

  it("answers 429 with Retry-After when a job does not fit in the queue", async () => {
    const { model, nextRun } = drivenModel();
    const scheduler = new Scheduler(model, { ...options, maxQueuedTiles: 10 });
    const seen: number[] = [];
    const first = scheduler.submit(job(1, 8, seen));
    const run = await nextRun();
    expect(scheduler.queuedTiles).toBe(4);
    let refusal: unknown;
    try {
      void scheduler.submit(job(2, 7, seen));
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(DomainError);
    expect(refusal).toMatchObject({ kind: "limit_reached", code: "runner_busy" });
    expect((refusal as DomainError).retryAfterS).toBeGreaterThanOrEqual(1);
    run.finish();
    (await nextRun()).finish();
    await first;
    expect(seen).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
  });

  it("counts a fitted tile in the queue for its share of a full tile's area", async () => {
    const { model, nextRun } = drivenModel();
    const scheduler = new Scheduler(model, { ...options, maxQueuedTiles: 10 });
    const seen: number[] = [];
    const first = scheduler.submit(job(1, 8, seen));
    const run = await nextRun();
    expect(() => void scheduler.submit(job(2, 8, seen))).toThrow(DomainError); // 4 + 8 full tiles > 10
    const quarters = scheduler.submit(job(3, 8, seen, 0, 2)); // 4 + 8 / 4: admitted
    expect(scheduler.queuedTiles).toBe(6);
    run.finish();
    for (let batches = 1; batches < 4; batches++) (await nextRun()).finish(); // 8 full tiles, then 8 quarters, 4 a batch
    await Promise.all([first, quarters]);
    expect(scheduler.queuedTiles).toBe(0);
  });

  it("admits a small job beside a large one that fills the queue, and finishes it within the next batches", async () => {
    const { model, nextRun } = drivenModel();
    const scheduler = new Scheduler(model, { ...options, maxQueuedTiles: 10 });
    const seen: number[] = [];
    const big = job(1, 40, seen);
    const bigDone = scheduler.submit(big);
    const first = await nextRun();
    expect(scheduler.queuedTiles).toBe(36);
    let smallDone = false;
    const small = scheduler.submit(job(2, 2, seen)).then(() => (smallDone = true));
    first.finish();
    (await nextRun()).finish();
    await small;
    // The small job ended in the batch after the one running when it came: 2 of the big job's 40 tiles ran beside it.
    expect(smallDone).toBe(true);
    expect(seen).toEqual([1, 1, 1, 1, 1, 2, 1, 2]);
    expect(scheduler.cancel(big, new Error("done"))).toBe(true);
    await expect(bigDone).rejects.toThrow("done");
  });

  it("still refuses a second large job while the first fills the queue", async () => {
    const { model, nextRun } = drivenModel();
    const scheduler = new Scheduler(model, { ...options, maxQueuedTiles: 10 });
    const big = job(1, 40, []);
    const bigDone = scheduler.submit(big);
    await nextRun();
    // 8 of its own plus 8 of the first job's before it ends: 16 tiles, over the bound of 10.
    expect(scheduler.tilesUntilDone(8)).toBe(16);
    expect(() => scheduler.submit(job(2, 8, []))).toThrow(expect.objectContaining({ kind: "limit_reached", code: "runner_busy" }));
    scheduler.cancel(big, new Error("done"));
    await expect(bigDone).rejects.toThrow("done");
  });

  it("admits any job into an empty queue, even one larger than the queue", async () => {
    const seen: number[] = [];
    await new Scheduler(nearestModel(4), { ...options, maxQueuedTiles: 2 }).submit(job(1, 5, seen));
    expect(seen).toHaveLength(5);
  });

  it("fails only the jobs of a batch whose model run threw, and keeps serving others", async () => {
    const model = nearestModel(4);
    let calls = 0;
    const original = model.run.bind(model);
    model.run = (...args) => (++calls === 1 ? Promise.reject(new Error("device lost")) : original(...args));
    const scheduler = new Scheduler(model, options);
    const seen: number[] = [];
    await expect(scheduler.submit(job(1, 3, seen))).rejects.toThrow("device lost");
    expect(scheduler.queuedTiles).toBe(0);
    await scheduler.submit(job(2, 3, seen));
    expect(seen).toEqual([2, 2, 2]);
  });

  it("keeps the model below a throughput ceiling, pausing between batches", async () => {
    const { model, nextRun } = drivenModel();
    // 4 tiles a batch at 200 tiles/s: a batch may start 20 ms after the previous one at the earliest.
    const scheduler = new Scheduler(model, { ...options, maxTilesPerSecond: 200 });
    const work = scheduler.submit(job(1, 10, []));
    const starts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const run = await nextRun();
      starts.push(run.at);
      run.finish();
    }
    await work;
    expect(model.runs).toEqual([4, 4, 2]);
    // Timers keep whole milliseconds, so allow one below the exact share.
    for (let i = 1; i < starts.length; i++) expect((starts[i] as number) - (starts[i - 1] as number)).toBeGreaterThanOrEqual(19);
  });

  it("counts the throughput ceiling in Retry-After", async () => {
    const { model, nextRun } = drivenModel();
    const scheduler = new Scheduler(model, { ...options, maxTilesPerSecond: 0.5 });
    const work = scheduler.submit(job(1, 8, []));
    const run = await nextRun();
    // 4 tiles still queued at 0.5 tiles/s: 8 s, whatever the model's own speed.
    expect(scheduler.retryAfterSeconds()).toBe(8);
    run.fail(new Error("device lost"));
    await expect(work).rejects.toThrow("device lost");
  });

  it("resolves idle() once every job in flight is done", async () => {
    const scheduler = new Scheduler(nearestModel(4), options);
    const seen: number[] = [];
    const work = scheduler.submit(job(1, 9, seen));
    await scheduler.idle();
    expect(seen).toHaveLength(9);
    await work;
  });
});

describe("Scheduler.cancel", () => {
  it("takes a job's tiles not yet run out of the queue at once, and rejects the job with the reason", async () => {
    const { model, nextRun } = drivenModel();
    const scheduler = new Scheduler(model, options);
    const big = job(1, 10, []);
    const work = scheduler.submit(big);
    const run = await nextRun();
    expect(scheduler.queuedTiles).toBe(6); // the first 4 tiles are in the model
    const reason = new Error("canceled");
    expect(scheduler.cancel(big, reason)).toBe(true);
    expect(scheduler.queuedTiles).toBe(0);
    await expect(work).rejects.toBe(reason);
    run.finish();
    await scheduler.idle();
  });

  it("drops the outputs of the job's tiles that were in the model when it was withdrawn", async () => {
    const { model, nextRun } = drivenModel();
    const scheduler = new Scheduler(model, options);
    const withdrawn = job(1, 10, []);
    scheduler.submit(withdrawn).catch(() => undefined);
    const run = await nextRun();
    scheduler.cancel(withdrawn, new Error("canceled"));
    run.finish();
    await scheduler.idle();
    expect(model.runs).toEqual([4]);
    expect(withdrawn.accepted).toEqual([]);
  });

  it("keeps running the other jobs", async () => {
    const { model, nextRun } = drivenModel();
    const scheduler = new Scheduler(model, options);
    const withdrawn = job(1, 8, []);
    scheduler.submit(withdrawn).catch(() => undefined);
    const first = await nextRun();
    const other = job(2, 2, []);
    const work = scheduler.submit(other);
    scheduler.cancel(withdrawn, new Error("canceled"));
    first.finish();
    (await nextRun()).finish();
    await work;
    expect(other.accepted).toEqual([0, 1]);
    expect(withdrawn.accepted).toEqual([]);
    expect(model.runs).toEqual([4, 2]);
  });

  it("answers false for a job it does not hold: never submitted, or already done", async () => {
    const scheduler = new Scheduler(nearestModel(4), options);
    const done = job(1, 2, []);
    await scheduler.submit(done);
    expect(scheduler.cancel(done, new Error("late"))).toBe(false);
    expect(scheduler.cancel(job(2, 2, []), new Error("unknown"))).toBe(false);
  });
});
