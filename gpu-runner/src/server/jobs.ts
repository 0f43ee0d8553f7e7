import { createHash } from "node:crypto";
import { DomainError, JOB_CANCELED, type JobQuery, type RunnerJob, type RunnerLimits, jobRecordKey, maxInputPixelsAt, resultKey, runnerJobSchema } from "@hvar/contract";
import type { Logger } from "pino";
import { decodeImage, type DecodeOptions } from "../image/decode";
import { type Manifest, manifestLimits } from "../model/manifest";
import type { Scheduler, TileJob } from "../scheduler/scheduler";
import type { ObjectStore } from "../storage/store";
import { taskMemoryBytes, UpscaleTask } from "../tiling/task";
import type { RunnerMetrics } from "./metrics";

export interface JobServiceOptions {
  manifest: Manifest;
  scheduler: Scheduler;
  store: ObjectStore;
  metrics: RunnerMetrics;
  log: Logger;
  decode: DecodeOptions;
  overlap: number;
  /** Bytes one job may hold at its peak (taskMemoryBytes), and all jobs in flight together. */
  memory: { jobBytes: number; totalBytes: number };
}

/** The rejection a canceled job's work ends with (it ends `failed` with JOB_CANCELED). */
class JobCanceled extends Error {
  constructor() {
    super(JOB_CANCELED.title);
    this.name = "JobCanceled";
  }
}

interface ActiveJob {
  job: RunnerJob;
  done: Promise<void>;
  /** Withdraws the job's tiles and stops it before its outputs are stored. */
  cancel(): void;
}

/**
 * Jobs (packages/contract's RunnerJob, as API.md shows them) from admission to stored results. A job
 * is in memory while it runs; once it ends, its record goes to the store after its outputs, so a job
 * reported `succeeded` always has its results stored, and a restarted runner still answers for it.
 * A job in flight when a runner dies is simply unknown afterwards (404), and the worker dispatches
 * it again under the same id.
 */
export class JobService {
  private readonly active = new Map<string, ActiveJob>();
  private readonly creating = new Map<string, Promise<{ job: RunnerJob; created: boolean }>>();
  /** Bytes the jobs in flight hold by taskMemoryBytes, counted from admission until they end. */
  private memoryInUse = 0;

  constructor(private readonly options: JobServiceOptions) {}

  get manifest(): Manifest {
    return this.options.manifest;
  }

  /** What this service accepts: the manifest's limits within the decoder's pixel limit (HVAR_MAX_INPUT_PIXELS). */
  get limits(): Omit<RunnerLimits, "maxBodyBytes"> {
    return manifestLimits(this.options.manifest, this.options.decode.maxPixels);
  }

  /** Jobs not yet ended, by status, for metrics. */
  countByStatus(): Record<"queued" | "running", number> {
    const counts = { queued: 0, running: 0 };
    for (const { job } of this.active.values()) if (job.status === "queued" || job.status === "running") counts[job.status]++;
    return counts;
  }

  async get(id: string): Promise<RunnerJob | undefined> {
    const live = this.active.get(id);
    if (live) return structuredClone(live.job);
    const stored = await this.options.store.get(jobRecordKey(id));
    return stored ? runnerJobSchema.parse(JSON.parse(stored.bytes.toString("utf8"))) : undefined;
  }

  /** Reads a stored output by the key its job record gives. */
  output(key: string) {
    return this.options.store.get(key);
  }

  /**
   * Creates the job, or returns the known one for that id (`created: false`). Bad images and a full
   * queue throw DomainErrors before anything is stored.
   */
  create(query: JobQuery, body: Uint8Array, log: Logger): Promise<{ job: RunnerJob; created: boolean }> {
    // Concurrent calls with one id share one creation: the id is the idempotency key.
    const pending = this.creating.get(query.id);
    if (pending) return pending.then(({ job }) => ({ job, created: false }));
    const creation = this.createOnce(query, body, log).finally(() => this.creating.delete(query.id));
    this.creating.set(query.id, creation);
    return creation;
  }

  /**
   * Cancels a job and answers how it ended. A job in flight loses its tiles not yet run at once (and
   * with them its memory), and ends `failed` with `job_canceled`, stored like any ended job; one that
   * had already stored its outputs succeeds, and a job that ended is answered as it is. An id not
   * seen yet is stored as canceled, so that a submit arriving after its cancel (a worker that gave
   * up waiting for the submit's answer) never starts work.
   */
  async cancel(id: string): Promise<RunnerJob> {
    await this.creating.get(id)?.catch(() => undefined);
    const live = this.active.get(id);
    if (live) {
      live.cancel();
      await live.done;
      return structuredClone(live.job);
    }
    const known = await this.get(id);
    if (known) return known;
    const { manifest } = this.options;
    const canceled: RunnerJob = {
      id,
      status: "failed",
      model: { id: manifest.id, version: manifest.version },
      input: { width: 0, height: 0 },
      progress: { tilesDone: 0, tilesTotal: 0 },
      runnerMs: 0,
      error: { ...JOB_CANCELED },
    };
    await this.options.store.put(jobRecordKey(id), Buffer.from(JSON.stringify(canceled)), "application/json");
    this.options.metrics.job("canceled");
    return canceled;
  }

  /** Resolves when every job in flight has ended (graceful shutdown). */
  async drain(): Promise<void> {
    while (this.active.size > 0 || this.creating.size > 0) {
      await Promise.allSettled([...this.active.values()].map((a) => a.done).concat([...this.creating.values()].map((c) => c.then(() => undefined))));
    }
  }

  private async createOnce(query: JobQuery, body: Uint8Array, log: Logger): Promise<{ job: RunnerJob; created: boolean }> {
    const known = await this.get(query.id);
    if (known) {
      this.options.metrics.job("duplicate");
      return { job: known, created: false };
    }
    const { manifest, scheduler, decode, overlap } = this.options;
    let image;
    try {
      // The manifest's limits at the scales asked for: an input for scale s has at most maxOutputPixels / s².
      const maxPixels = Math.min(...query.scales.map((scale) => maxInputPixelsAt(scale, this.limits)));
      image = await decodeImage(await this.input(query, body), { ...decode, maxPixels, expected: query.size });
    } catch (error) {
      this.options.metrics.job("rejected");
      throw error;
    }
    const bytes = taskMemoryBytes(image.width, image.height, query.scales, image.alpha !== undefined);
    try {
      this.admitMemory(bytes, query);
    } catch (error) {
      this.options.metrics.job("rejected");
      throw error;
    }
    const task = new UpscaleTask(image, { scales: query.scales, tile: manifest.tile, overlap, temperature: query.temperature });
    let canceled = false;
    const job: RunnerJob = {
      id: query.id,
      status: "queued",
      model: { id: manifest.id, version: manifest.version },
      input: { width: image.width, height: image.height },
      progress: { tilesDone: 0, tilesTotal: task.tiles },
    };
    const started = performance.now();
    const tiles: TileJob = {
      tiles: task.tiles,
      temperature: task.temperature,
      fill: (index, dst, offset) => task.fill(index, dst, offset),
      accept: (index, outputs, slot) => {
        task.accept(index, outputs, slot);
        job.status = "running";
        job.progress.tilesDone = task.tilesDone;
      },
    };
    let inference: Promise<void>;
    try {
      inference = scheduler.submit(tiles);
    } catch (error) {
      this.memoryInUse -= bytes;
      this.options.metrics.job("rejected");
      throw error;
    }
    this.options.metrics.job("accepted");
    const jobLog = log.child({ jobId: job.id });
    jobLog.info({ width: image.width, height: image.height, format: image.format, tiles: task.tiles, scales: query.scales }, "job accepted");
    const done = inference
      .then(() => this.finish(job, task, query, started, jobLog, () => canceled))
      .catch((error: unknown) => this.fail(job, error, started, jobLog))
      .finally(() => {
        this.memoryInUse -= bytes;
        this.active.delete(job.id);
      });
    const cancel = () => {
      canceled = true;
      scheduler.cancel(tiles, new JobCanceled());
    };
    this.active.set(job.id, { job, done, cancel });
    return { job: structuredClone(job), created: true };
  }

  /**
   * Counts a job's memory against the budgets before any tile runs: a job over the per-job budget
   * can never run here (413 job_too_large); one that does not fit beside the jobs in flight is told
   * to come back (429 runner_busy), unless none is in flight.
   */
  private admitMemory(bytes: number, query: JobQuery): void {
    const { jobBytes, totalBytes } = this.options.memory;
    const mb = (b: number) => Math.ceil(b / 2 ** 20);
    if (bytes > jobBytes) {
      throw new DomainError({ kind: "too_large", code: "job_too_large", title: `This image at scales ${query.scales.join(", ")} needs about ${mb(bytes)} MB on the runner; its limit is ${mb(jobBytes)} MB per job.` });
    }
    if (this.memoryInUse > 0 && this.memoryInUse + bytes > totalBytes) {
      const retryAfter = this.options.scheduler.retryAfterSeconds();
      throw new DomainError({ kind: "limit_reached", code: "runner_busy", title: `The runner's memory for jobs is in use; retry in ${retryAfter} s.`, retryAfterS: retryAfter });
    }
    this.memoryInUse += bytes;
  }

  private async input(query: JobQuery, body: Uint8Array): Promise<Uint8Array> {
    if (query.source === undefined) return body;
    if (body.length > 0) throw new DomainError({ kind: "invalid_input", code: "invalid_request", title: "Send either image bytes or a source key, not both." });
    const object = await this.options.store.get(query.source).catch(() => undefined);
    if (object === undefined) throw new DomainError({ kind: "unprocessable", code: "source_not_found", title: `No object at source key '${query.source}'.` });
    return object.bytes;
  }

  private async finish(job: RunnerJob, task: UpscaleTask, query: JobQuery, started: number, log: Logger, canceled: () => boolean): Promise<void> {
    const encoded = await task.encode(query.format, query.quality);
    // The last moment a cancel applies: once outputs are stored, the job succeeds.
    if (canceled()) throw new JobCanceled();
    const outputs = await Promise.all(
      encoded.map(async (o) => {
        const key = resultKey(job.id, o.scale, o.format);
        await this.options.store.put(key, o.bytes, o.contentType);
        return { scale: o.scale, key, contentType: o.contentType, width: o.width, height: o.height, bytes: o.bytes.length, sha256: createHash("sha256").update(o.bytes).digest("hex") };
      }),
    );
    const ended: RunnerJob = { ...job, status: "succeeded", outputs, runnerMs: Math.round(performance.now() - started) };
    // The record is written after the outputs: a stored "succeeded" always has its results.
    await this.options.store.put(jobRecordKey(job.id), Buffer.from(JSON.stringify(ended)), "application/json");
    Object.assign(job, ended);
    this.options.metrics.job("succeeded");
    log.info({ runnerMs: ended.runnerMs, outputs: outputs.map((o) => o.key) }, "job succeeded");
  }

  private async fail(job: RunnerJob, error: unknown, started: number, log: Logger): Promise<void> {
    const canceled = error instanceof JobCanceled;
    if (canceled) log.info({ tilesDone: job.progress.tilesDone, tilesTotal: job.progress.tilesTotal }, "job canceled");
    else log.error({ err: error }, "job failed");
    const reason = canceled ? { ...JOB_CANCELED } : { code: "inference_failed", title: "The runner could not process this image." };
    const ended: RunnerJob = { ...job, status: "failed", runnerMs: Math.round(performance.now() - started), error: reason };
    delete ended.outputs;
    try {
      await this.options.store.put(jobRecordKey(job.id), Buffer.from(JSON.stringify(ended)), "application/json");
    } catch (storeError) {
      // The job still reports failed from memory until it leaves; after a restart it is unknown and
      // the worker retries it, which is the right outcome for a failure to store.
      log.error({ err: storeError }, "could not store the failed job's record");
    }
    Object.assign(job, ended);
    this.options.metrics.job(canceled ? "canceled" : "failed");
  }
}
