import { describe, expect, it } from "vitest";
import type { ModelOutputs } from "../../gpu-runner/src/model/types";
import { ProblemError } from "../../gpu-runner/src/problem";
import { bytesPerTile, Scheduler, type TileJob } from "../../gpu-runner/src/scheduler/scheduler";
import { nearestModel } from "./helpers";

/** A job whose tiles carry its name, so the order they reach the model shows up in `seen`. */
function job(name: number, tiles: number, seen: number[], temperature = 0): TileJob & { accepted: number[] } {
  const accepted: number[] = [];
  return {
    tiles,
    temperature,
    accepted,
    fill: (_index, dst, offset) => void dst.fill(name, offset, offset + 3 * 4 * 4),
    accept: (index, outputs: ModelOutputs, slot) => {
      seen.push(outputs.x1[slot * 3 * 16] as number);
      accepted.push(index);
    },
  };
}

/** A model that waits for `release()` before each run, so tests control when batches happen. */
function gatedModel() {
  let open: () => void = () => undefined;
  let gate = new Promise<void>((resolve) => (open = resolve));
  const temperatures: number[] = [];
  const model = nearestModel(4, async (_n, temperature) => {
    temperatures.push(temperature);
    await gate;
    gate = new Promise<void>((resolve) => (open = resolve));
  });
  return { model, temperatures, release: () => open() };
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
    const { model, release } = gatedModel();
    const scheduler = new Scheduler(model, options);
    const seen: number[] = [];
    const big = scheduler.submit(job(1, 8, seen));
    const small = scheduler.submit(job(2, 2, seen));
    // The first batch was cut when only the big job was known; the second mixes both.
    for (let i = 0; i < 3; i++) {
      release();
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    await Promise.all([big, small]);
    expect(model.runs).toEqual([4, 4, 2]);
    expect(seen.slice(4, 8).sort()).toEqual([1, 1, 2, 2]);
  });

  it("keeps tiles of different temperatures in different batches", async () => {
    const { model, temperatures, release } = gatedModel();
    const scheduler = new Scheduler(model, options);
    const seen: number[] = [];
    const runs = Promise.all([scheduler.submit(job(1, 2, seen, 0)), scheduler.submit(job(2, 2, seen, 0.7))]);
    for (let i = 0; i < 3; i++) {
      release();
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    await runs;
    expect(model.runs).toEqual([2, 2]);
    expect(temperatures).toEqual([0, 0.7]);
  });

  it("answers 429 with Retry-After when a job does not fit in the queue", async () => {
    const { model, release } = gatedModel();
    const scheduler = new Scheduler(model, { ...options, maxQueuedTiles: 10 });
    const seen: number[] = [];
    const first = scheduler.submit(job(1, 8, seen));
    let refusal: unknown;
    try {
      void scheduler.submit(job(2, 8, seen));
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(ProblemError);
    expect(refusal).toMatchObject({ status: 429, code: "runner_busy" });
    expect(Number((refusal as ProblemError).headers["Retry-After"])).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 2; i++) {
      release();
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    await first;
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
  /** Lets the gated model run `batches` more batches. */
  async function runBatches(release: () => void, batches: number): Promise<void> {
    for (let i = 0; i < batches; i++) {
      release();
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  it("takes a job's tiles not yet run out of the queue at once, and rejects the job with the reason", async () => {
    const { model } = gatedModel();
    const scheduler = new Scheduler(model, options);
    const big = job(1, 10, []);
    const work = scheduler.submit(big);
    expect(scheduler.queuedTiles).toBe(6); // the first 4 tiles are in the model
    const reason = new Error("canceled");
    expect(scheduler.cancel(big, reason)).toBe(true);
    expect(scheduler.queuedTiles).toBe(0);
    await expect(work).rejects.toBe(reason);
  });

  it("drops the outputs of the job's tiles that were in the model when it was withdrawn", async () => {
    const { model, release } = gatedModel();
    const scheduler = new Scheduler(model, options);
    const withdrawn = job(1, 10, []);
    scheduler.submit(withdrawn).catch(() => undefined);
    scheduler.cancel(withdrawn, new Error("canceled"));
    await runBatches(release, 1);
    await scheduler.idle();
    expect(model.runs).toEqual([4]);
    expect(withdrawn.accepted).toEqual([]);
  });

  it("keeps running the other jobs", async () => {
    const { model, release } = gatedModel();
    const scheduler = new Scheduler(model, options);
    const withdrawn = job(1, 8, []);
    scheduler.submit(withdrawn).catch(() => undefined);
    const other = job(2, 2, []);
    const work = scheduler.submit(other);
    scheduler.cancel(withdrawn, new Error("canceled"));
    await runBatches(release, 2);
    await work;
    expect(other.accepted).toEqual([0, 1]);
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
