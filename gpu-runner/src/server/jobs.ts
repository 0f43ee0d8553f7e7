import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { z } from "zod";
import { decodeImage, type DecodeOptions } from "../image/decode";
import { OutputFormatSchema } from "../image/encode";
import type { Manifest } from "../model/manifest";
import type { Scale } from "../model/types";
import { ProblemError } from "../problem";
import type { Scheduler } from "../scheduler/scheduler";
import type { ObjectStore } from "../storage/store";
import { UpscaleTask } from "../tiling/task";
import type { RunnerMetrics } from "./metrics";

export const JobIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, "job ids are 1-128 characters of A-Z a-z 0-9 _ -");

/** The query of `POST /v1/jobs` (API.md). */
export const CreateJobQuerySchema = z.object({
  id: JobIdSchema,
  scales: z
    .string()
    .default("1,2,4")
    .transform((s, ctx) => {
      const scales = [...new Set(s.split(",").map((v) => v.trim()))];
      if (scales.length === 0 || scales.some((v) => !["1", "2", "4"].includes(v))) {
        ctx.addIssue({ code: "custom", message: "scales is a comma-separated subset of 1, 2, 4" });
        return z.NEVER;
      }
      return scales.map(Number).sort((a, b) => a - b) as Scale[];
    }),
  format: OutputFormatSchema.default("png"),
  quality: z.coerce.number().int().min(1).max(100).default(90),
  temperature: z.coerce.number().min(0).max(10).default(0),
  /** A storage key to read the image from instead of the body (API.md). */
  source: z
    .string()
    .regex(/^[A-Za-z0-9._\-/]{1,512}$/)
    .optional(),
  /** `<width>x<height>`, the size the worker billed (oriented): the image must decode to exactly this size. */
  size: z
    .string()
    .regex(/^[1-9]\d{0,5}x[1-9]\d{0,5}$/, "size is <width>x<height>")
    .transform((s) => {
      const [width, height] = s.split("x").map(Number) as [number, number];
      return { width, height };
    })
    .optional(),
});
export type CreateJobQuery = z.infer<typeof CreateJobQuerySchema>;

const OutputSchema = z.object({
  scale: z.union([z.literal(1), z.literal(2), z.literal(4)]),
  key: z.string(),
  contentType: z.string(),
  width: z.number().int(),
  height: z.number().int(),
  bytes: z.number().int(),
  sha256: z.string(),
});

/** A job as API.md shows it; also the record persisted at `jobs/<id>.json` once the job ends. */
export const JobSchema = z.object({
  id: JobIdSchema,
  status: z.enum(["queued", "running", "succeeded", "failed"]),
  model: z.object({ id: z.string(), version: z.string() }),
  input: z.object({ width: z.number().int(), height: z.number().int() }),
  progress: z.object({ tilesDone: z.number().int(), tilesTotal: z.number().int() }),
  outputs: z.array(OutputSchema).optional(),
  runnerMs: z.number().int().optional(),
  error: z.object({ code: z.string(), title: z.string() }).optional(),
});
export type Job = z.infer<typeof JobSchema>;

export interface JobServiceOptions {
  manifest: Manifest;
  scheduler: Scheduler;
  store: ObjectStore;
  metrics: RunnerMetrics;
  log: Logger;
  decode: DecodeOptions;
  overlap: number;
}

const recordKey = (id: string) => `jobs/${id}.json`;

/**
 * Jobs from admission to stored results. A job is in memory while it runs; once it ends, its record
 * goes to the store after its outputs, so a job reported `succeeded` always has its results stored,
 * and a restarted runner still answers for it. A job in flight when a runner dies is simply unknown
 * afterwards (404), and the worker dispatches it again under the same id.
 */
export class JobService {
  private readonly active = new Map<string, { job: Job; done: Promise<void> }>();
  private readonly creating = new Map<string, Promise<{ job: Job; created: boolean }>>();

  constructor(private readonly options: JobServiceOptions) {}

  /** Jobs not yet ended, by status, for metrics. */
  countByStatus(): Record<"queued" | "running", number> {
    const counts = { queued: 0, running: 0 };
    for (const { job } of this.active.values()) if (job.status === "queued" || job.status === "running") counts[job.status]++;
    return counts;
  }

  async get(id: string): Promise<Job | undefined> {
    const live = this.active.get(id);
    if (live) return structuredClone(live.job);
    const stored = await this.options.store.get(recordKey(id));
    return stored ? JobSchema.parse(JSON.parse(stored.bytes.toString("utf8"))) : undefined;
  }

  /** Reads a stored output by the key its job record gives. */
  output(key: string) {
    return this.options.store.get(key);
  }

  /**
   * Creates the job, or returns the known one for that id (`created: false`). Bad images and a full
   * queue throw ProblemErrors before anything is stored.
   */
  create(query: CreateJobQuery, body: Uint8Array, log: Logger): Promise<{ job: Job; created: boolean }> {
    // Concurrent calls with one id share one creation: the id is the idempotency key.
    const pending = this.creating.get(query.id);
    if (pending) return pending.then(({ job }) => ({ job, created: false }));
    const creation = this.createOnce(query, body, log).finally(() => this.creating.delete(query.id));
    this.creating.set(query.id, creation);
    return creation;
  }

  /** Resolves when every job in flight has ended (graceful shutdown). */
  async drain(): Promise<void> {
    while (this.active.size > 0 || this.creating.size > 0) {
      await Promise.allSettled([...this.active.values()].map((a) => a.done).concat([...this.creating.values()].map((c) => c.then(() => undefined))));
    }
  }

  private async createOnce(query: CreateJobQuery, body: Uint8Array, log: Logger): Promise<{ job: Job; created: boolean }> {
    const known = await this.get(query.id);
    if (known) {
      this.options.metrics.job("duplicate");
      return { job: known, created: false };
    }
    const { manifest, scheduler, decode, overlap } = this.options;
    let image;
    try {
      image = await decodeImage(await this.input(query, body), { ...decode, expected: query.size });
    } catch (error) {
      this.options.metrics.job("rejected");
      throw error;
    }
    const task = new UpscaleTask(image, { scales: query.scales, tile: manifest.tile, overlap, temperature: query.temperature });
    const job: Job = {
      id: query.id,
      status: "queued",
      model: { id: manifest.id, version: manifest.version },
      input: { width: image.width, height: image.height },
      progress: { tilesDone: 0, tilesTotal: task.tiles },
    };
    const started = performance.now();
    let inference: Promise<void>;
    try {
      inference = scheduler.submit({
        tiles: task.tiles,
        temperature: task.temperature,
        fill: (index, dst, offset) => task.fill(index, dst, offset),
        accept: (index, outputs, slot) => {
          task.accept(index, outputs, slot);
          job.status = "running";
          job.progress.tilesDone = task.tilesDone;
        },
      });
    } catch (error) {
      this.options.metrics.job("rejected");
      throw error;
    }
    this.options.metrics.job("accepted");
    const jobLog = log.child({ jobId: job.id });
    jobLog.info({ width: image.width, height: image.height, format: image.format, tiles: task.tiles, scales: query.scales }, "job accepted");
    const done = inference
      .then(() => this.finish(job, task, query, started, jobLog))
      .catch((error: unknown) => this.fail(job, error, started, jobLog))
      .finally(() => this.active.delete(job.id));
    this.active.set(job.id, { job, done });
    return { job: structuredClone(job), created: true };
  }

  private async input(query: CreateJobQuery, body: Uint8Array): Promise<Uint8Array> {
    if (query.source === undefined) return body;
    if (body.length > 0) throw new ProblemError(400, "invalid_request", "Send either image bytes or a source key, not both.");
    const object = await this.options.store.get(query.source).catch(() => undefined);
    if (object === undefined) throw new ProblemError(422, "source_not_found", `No object at source key '${query.source}'.`);
    return object.bytes;
  }

  private async finish(job: Job, task: UpscaleTask, query: CreateJobQuery, started: number, log: Logger): Promise<void> {
    const encoded = await task.encode(query.format, query.quality);
    const outputs = await Promise.all(
      encoded.map(async (o) => {
        const key = `results/${job.id}/x${o.scale}.${o.format}`;
        await this.options.store.put(key, o.bytes, o.contentType);
        return { scale: o.scale, key, contentType: o.contentType, width: o.width, height: o.height, bytes: o.bytes.length, sha256: createHash("sha256").update(o.bytes).digest("hex") };
      }),
    );
    const ended: Job = { ...job, status: "succeeded", outputs, runnerMs: Math.round(performance.now() - started) };
    // The record is written after the outputs: a stored "succeeded" always has its results.
    await this.options.store.put(recordKey(job.id), Buffer.from(JSON.stringify(ended)), "application/json");
    Object.assign(job, ended);
    this.options.metrics.job("succeeded");
    log.info({ runnerMs: ended.runnerMs, outputs: outputs.map((o) => o.key) }, "job succeeded");
  }

  private async fail(job: Job, error: unknown, started: number, log: Logger): Promise<void> {
    log.error({ err: error }, "job failed");
    const ended: Job = { ...job, status: "failed", runnerMs: Math.round(performance.now() - started), error: { code: "inference_failed", title: "The runner could not process this image." } };
    delete ended.outputs;
    try {
      await this.options.store.put(recordKey(job.id), Buffer.from(JSON.stringify(ended)), "application/json");
    } catch (storeError) {
      // The job still reports failed from memory until it leaves; after a restart it is unknown and
      // the worker retries it, which is the right outcome for a failure to store.
      log.error({ err: storeError }, "could not store the failed job's record");
    }
    Object.assign(job, ended);
    this.options.metrics.job("failed");
  }
}
