import { createHash, randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { DomainError, JOB_CANCELED, type JobQuery, type RunnerJob, type RunnerLimits, maxInputPixelsAt, resultKey } from "@hvar/contract";
import type { Logger } from "pino";
import { decodeImage, type DecodeOptions } from "../image/decode";
import { type Manifest, manifestLimits, servedCleanup, servedTemperature } from "../model/manifest";
import type { Scheduler, TileJob } from "../scheduler/scheduler";
import type { ObjectStore } from "../storage/store";
import { rgbBuffers } from "../tiling/rgb-buffers";
import { sumChunks } from "../tiling/sum-chunks";
import { taskMemoryBytes, UpscaleTask } from "../tiling/task";
import { type JobRecord, JobRecords, type Lease, outranks, withoutLease } from "./job-records";
import type { RunnerMetrics } from "./metrics";

export interface JobServiceOptions {
  manifest: Manifest;
  scheduler: Scheduler;
  store: ObjectStore;
  metrics: RunnerMetrics;
  log: Logger;
  decode: DecodeOptions;
  overlap: number;
  /** The step of fitted tiles (tileStep in manifest.ts); none: the manifest's tile side. */
  tileStep?: number;
  /** Bytes one job may hold at its peak (taskMemoryBytes), and all jobs in flight together. */
  memory: { jobBytes: number; totalBytes: number };
  /**
   * This runner among the replicas that share `store` (HVAR_REPLICA_ID), how often it refreshes the
   * records of its jobs in flight (HVAR_JOB_HEARTBEAT_MS), and how old a heartbeat may be before its
   * owner counts as dead (HVAR_JOB_STALE_MS).
   */
  replica: { id: string; heartbeatMs: number; staleMs: number };
  /** Unix ms; the clock heartbeats are written and judged by. */
  now?: () => number;
}

/** The rejection a canceled job's work ends with (it ends `failed` with JOB_CANCELED). */
class JobCanceled extends Error {
  constructor() {
    super(JOB_CANCELED.title);
    this.name = "JobCanceled";
  }
}

/** The rejection of a job another replica took over: it ends here without a word to the store. */
class JobTakenOver extends Error {
  constructor() {
    super("Another replica took the job over");
    this.name = "JobTakenOver";
  }
}

interface ActiveJob {
  job: RunnerJob;
  done: Promise<void>;
  /** Withdraws the job's tiles and stops it before its outputs are stored. */
  cancel(): void;
  /** Withdraws the job's tiles because another replica owns it now: nothing more is stored. */
  abandon(): void;
  abandoned: boolean;
  /** Set once the final record is on its way: no heartbeat follows it. */
  ending: boolean;
  beating: boolean;
  /** The job's record writes, one after another, so that a heartbeat never lands after the final record. */
  writes: Promise<void>;
  heartbeat?: NodeJS.Timeout;
  /** Its lease's generation here: one more than the record it took over had, else 1. */
  generation: number;
}

/**
 * Jobs (packages/contract's RunnerJob, as API.md shows them) from admission to stored results.
 *
 * Replicas behind one load balancer share the store, and any of them answers for any job from it
 * (job-records.ts): a job in flight has a record there from its admission on, refreshed by its owner
 * every heartbeat; once it ends, its final record goes to the store after its outputs, so a job
 * reported `succeeded` always has its results stored. A record whose heartbeat is older than
 * `staleMs`, or that this replica left before it restarted, was left by a runner that died: the job
 * is unknown (404), the worker dispatches it again under the same id, and the replica that gets it
 * takes it over. A cancel through another replica leaves a mark that the owner reads on its heartbeat.
 */
export class JobService {
  private readonly active = new Map<string, ActiveJob>();
  private readonly creating = new Map<string, Promise<{ job: RunnerJob; created: boolean }>>();
  /** Bytes the jobs in flight hold by taskMemoryBytes, counted from admission until they end. */
  private memoryInUse = 0;
  private readonly records: JobRecords;
  /** This process among the runs of this replica: a lease of this replica with another boot is a dead one's. */
  private readonly boot = randomUUID();
  private readonly now: () => number;

  constructor(private readonly options: JobServiceOptions) {
    this.records = new JobRecords(options.store);
    this.now = options.now ?? Date.now;
  }

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

  /** The job: from memory when this replica runs it, else its shared record unless that was left by a dead runner. */
  async get(id: string): Promise<RunnerJob | undefined> {
    const live = this.active.get(id);
    if (live && !live.abandoned) return structuredClone(live.job);
    const record = await this.records.read(id);
    return record && (record.lease === undefined || this.alive(record.id, record.lease)) ? withoutLease(record) : undefined;
  }

  /**
   * Whether a lease's owner still runs its job: on this replica, only this very process's jobs (a
   * lease of an earlier boot was left by this replica before it restarted); on another, while its
   * heartbeat is fresh.
   */
  private alive(jobId: string, lease: Lease): boolean {
    if (lease.replica === this.options.replica.id) return lease.boot === this.boot && this.active.get(jobId)?.abandoned === false;
    return this.now() - lease.heartbeatAt <= this.options.replica.staleMs;
  }

  /**
   * The job once it has ended, as its stored record says (undefined when none is stored): for a
   * consumer that may acknowledge a job only once its end is stored (the queue consumer).
   */
  async ended(id: string): Promise<RunnerJob | undefined> {
    await this.creating.get(id)?.catch(() => undefined);
    await this.active.get(id)?.done;
    const record = await this.records.read(id);
    return record && record.lease === undefined ? record : undefined; // a lease: still in flight somewhere
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
   * had already stored its outputs succeeds, and a job that ended is answered as it is. A job that
   * another replica runs gets a cancel mark, which its owner acts on at its next heartbeat; the answer
   * waits for that (or for the owner's heartbeat to go stale). An id not seen yet, or left by a dead
   * runner, is stored as canceled, so that a submit arriving after its cancel (a worker that gave up
   * waiting for the submit's answer) never starts work.
   */
  async cancel(id: string): Promise<RunnerJob> {
    await this.creating.get(id)?.catch(() => undefined);
    const live = this.active.get(id);
    if (live && !live.abandoned) {
      live.cancel();
      await live.done;
      return structuredClone(live.job);
    }
    let record = await this.records.read(id);
    if (record?.lease && this.alive(id, record.lease)) {
      await this.records.markCanceled(id);
      while (record?.lease && this.alive(id, record.lease)) {
        await delay(this.options.replica.heartbeatMs / 2);
        record = await this.records.read(id);
      }
      // The job ended (canceled, or done before its owner read the mark) or its owner died: the mark has served.
      await this.records.clearCancelMark(id);
    }
    if (record && !record.lease) return withoutLease(record);
    const { manifest } = this.options;
    const canceled: RunnerJob = {
      id,
      status: "failed",
      model: { id: manifest.id, version: manifest.version },
      input: record?.input ?? { width: 0, height: 0 },
      progress: record?.progress ?? { tilesDone: 0, tilesTotal: 0 },
      runnerMs: 0,
      error: { ...JOB_CANCELED },
    };
    await this.records.write(canceled);
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
    // What is left of the job is a dead owner's record, if anything: this replica takes it over.
    const generation = ((await this.records.read(query.id))?.lease?.generation ?? 0) + 1;
    const { manifest, scheduler, decode, overlap, tileStep } = this.options;
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
    let task: UpscaleTask;
    try {
      task = await UpscaleTask.create(image, {
        scales: query.scales,
        tile: manifest.tile,
        tileStep,
        overlap,
        temperature: servedTemperature(manifest, query.temperature),
        cleanup: servedCleanup(manifest, query.cleanup),
      });
    } catch (error) {
      this.memoryInUse -= bytes;
      this.options.metrics.job("rejected");
      throw error;
    }
    let canceled = false;
    const job: RunnerJob = {
      id: query.id,
      status: "queued",
      model: { id: manifest.id, version: manifest.version },
      input: { width: image.width, height: image.height },
      cleanup: task.settings.cleanup,
      progress: { tilesDone: 0, tilesTotal: task.tiles },
    };
    const started = performance.now();
    const tiles: TileJob = {
      tiles: task.tiles,
      settings: task.settings,
      shape: task.shape,
      // Running from the moment its first tile goes into a batch, not once that batch is done.
      fill: (index, dst, offset) => {
        job.status = "running";
        task.fill(index, dst, offset);
      },
      accept: (index, outputs, slot) => {
        task.accept(index, outputs, slot);
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
    jobLog.info({ width: image.width, height: image.height, format: image.format, tiles: task.tiles, scales: query.scales, cleanup: task.settings.cleanup }, "job accepted");
    const active: ActiveJob = {
      job,
      done: Promise.resolve(),
      cancel: () => {
        canceled = true;
        scheduler.cancel(tiles, new JobCanceled());
      },
      abandon: () => {
        active.abandoned = true;
        scheduler.cancel(tiles, new JobTakenOver());
      },
      abandoned: false,
      ending: false,
      beating: false,
      writes: Promise.resolve(),
      generation,
    };
    active.done = inference
      .then(() => this.finish(active, task, query, started, jobLog, () => canceled))
      .catch((error: unknown) => this.fail(active, error, started, jobLog))
      .finally(() => {
        clearInterval(active.heartbeat);
        this.memoryInUse -= bytes;
        this.active.delete(job.id);
      });
    this.active.set(job.id, active);
    active.heartbeat = setInterval(() => void this.beat(active, jobLog), this.options.replica.heartbeatMs).unref();
    const admitted = structuredClone(job);
    // Stored before the 202: from here on any replica answers for the job instead of taking it over.
    try {
      await this.write(active, () => this.records.write(job, this.lease(active)));
    } catch (error) {
      active.abandon();
      throw error;
    }
    return { job: admitted, created: true };
  }

  private lease(active: ActiveJob): Lease {
    return { replica: this.options.replica.id, boot: this.boot, heartbeatAt: this.now(), generation: active.generation };
  }

  /**
   * Whether this process still owns the job by its record: nobody else's lease outranks its own
   * (none stored is no rival). An ended record (no lease) was ended by another replica.
   */
  private owns(active: ActiveJob, record: JobRecord | undefined): boolean {
    if (record === undefined) return true;
    return record.lease !== undefined && !outranks(record.lease, this.lease(active));
  }

  /** Queues a write of the job's record behind the ones before it. */
  private write(active: ActiveJob, step: () => Promise<void>): Promise<void> {
    const next = active.writes.then(step);
    active.writes = next.catch(() => undefined);
    return next;
  }

  /**
   * One heartbeat of a job in flight: stops it when another replica has taken it over (its record
   * names another owner, or has ended), cancels it when a replica left a cancel mark, and otherwise
   * stores its record afresh, with its progress. A heartbeat still under way skips the next.
   */
  private async beat(active: ActiveJob, log: Logger): Promise<void> {
    if (active.beating) return;
    active.beating = true;
    const { id } = active.job;
    try {
      await this.write(active, async () => {
        if (active.ending || active.abandoned) return;
        const record = await this.records.read(id);
        if (!this.owns(active, record)) {
          log.warn({ owner: record?.lease?.replica ?? null }, "job taken over by another replica; stopping it here");
          active.abandon();
          return;
        }
        if (await this.records.cancelMarked(id)) {
          active.cancel();
          return;
        }
        await this.records.write(active.job, this.lease(active));
      });
    } catch (error) {
      // The next heartbeat tries again; a store down for longer than HVAR_JOB_STALE_MS lets another replica take the job over.
      log.warn({ err: error }, "job heartbeat failed");
    } finally {
      active.beating = false;
    }
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
    // Blend and image memory kept from ended jobs is the runner's too: with it, no more than the budget.
    sumChunks.keepAtMost(totalBytes - this.memoryInUse);
    rgbBuffers.keepAtMost(totalBytes - this.memoryInUse - sumChunks.freeBytes);
  }

  private async input(query: JobQuery, body: Uint8Array): Promise<Uint8Array> {
    if (query.source === undefined) return body;
    if (body.length > 0) throw new DomainError({ kind: "invalid_input", code: "invalid_request", title: "Send either image bytes or a source key, not both." });
    const object = await this.options.store.get(query.source).catch(() => undefined);
    if (object === undefined) throw new DomainError({ kind: "unprocessable", code: "source_not_found", title: `No object at source key '${query.source}'.` });
    return object.bytes;
  }

  private async finish(active: ActiveJob, task: UpscaleTask, query: JobQuery, started: number, log: Logger, canceled: () => boolean): Promise<void> {
    const { job } = active;
    const encoded = await task.encode(query.format, query.quality);
    // The last moment a cancel applies: once outputs are stored, the job succeeds.
    if (canceled()) throw new JobCanceled();
    // Nor are outputs stored over those of a replica that took the job over.
    if (active.abandoned || !this.owns(active, await this.records.read(job.id))) throw new JobTakenOver();
    const outputs = await Promise.all(
      encoded.map(async (o) => {
        const key = resultKey(job.id, o.scale, o.format);
        await this.options.store.put(key, o.bytes, o.contentType);
        return { scale: o.scale, key, contentType: o.contentType, width: o.width, height: o.height, bytes: o.bytes.length, sha256: createHash("sha256").update(o.bytes).digest("hex") };
      }),
    );
    const ended: RunnerJob = { ...job, status: "succeeded", outputs, runnerMs: Math.round(performance.now() - started) };
    // The record is written after the outputs: a stored "succeeded" always has its results.
    active.ending = true;
    await this.write(active, () => this.records.write(ended));
    Object.assign(job, ended);
    this.options.metrics.job("succeeded");
    log.info({ runnerMs: ended.runnerMs, outputs: outputs.map((o) => o.key) }, "job succeeded");
  }

  private async fail(active: ActiveJob, error: unknown, started: number, log: Logger): Promise<void> {
    const { job } = active;
    if (error instanceof JobTakenOver || active.abandoned) {
      // Its record is the new owner's now; this replica only lets go of it.
      active.abandoned = true;
      log.info({ tilesDone: job.progress.tilesDone, tilesTotal: job.progress.tilesTotal }, "job taken over by another replica");
      this.options.metrics.job("taken_over");
      return;
    }
    const canceled = error instanceof JobCanceled;
    if (canceled) log.info({ tilesDone: job.progress.tilesDone, tilesTotal: job.progress.tilesTotal }, "job canceled");
    else log.error({ err: error }, "job failed");
    const reason = canceled ? { ...JOB_CANCELED } : { code: "inference_failed", title: "The runner could not process this image." };
    const ended: RunnerJob = { ...job, status: "failed", runnerMs: Math.round(performance.now() - started), error: reason };
    delete ended.outputs;
    active.ending = true;
    try {
      await this.write(active, () => this.records.write(ended));
      if (canceled) await this.records.clearCancelMark(job.id);
    } catch (storeError) {
      // The job still reports failed from memory until it leaves; after a restart it is unknown and
      // the worker retries it, which is the right outcome for a failure to store.
      log.error({ err: storeError }, "could not store the failed job's record");
    }
    Object.assign(job, ended);
    this.options.metrics.job(canceled ? "canceled" : "failed");
  }
}
