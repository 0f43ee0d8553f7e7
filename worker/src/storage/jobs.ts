import { z } from "@hono/zod-openapi";
import { type JobError, type Model, type Output, jobStatusSchema } from "@hvar/contract";
import { jobErrorSchema, modelSchema, outputSchema } from "../contract";
import { normalizedOptionsSchema } from "../validate/options";
import { IMAGE_TYPES, type ImageType } from "../validate/sniff";

/** Job records in D1 (see migrations/0002_jobs.sql for why D1 and not KV); a job goes through a runner's statuses. */

const json = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .nullable()
    .transform((text) => (text === null ? null : (JSON.parse(text) as unknown)))
    .pipe(schema.nullable());

const rowSchema = z
  .object({
    id: z.string(),
    key_id: z.string(),
    idempotency_key: z.string().nullable(),
    request_hash: z.string(),
    cache_key: z.string(),
    status: jobStatusSchema,
    options: z.string().transform((text) => JSON.parse(text) as unknown).pipe(normalizedOptionsSchema),
    input_width: z.number(),
    input_height: z.number(),
    input_type: z.enum(Object.keys(IMAGE_TYPES) as [ImageType, ...ImageType[]]),
    backend: z.string(),
    runner: z.string().nullable(),
    model: json(modelSchema),
    outputs: json(z.array(outputSchema)),
    runner_ms: z.number().nullable(),
    error: json(jobErrorSchema),
    webhook_url: z.string().nullable(),
    origin: z.string().nullable(),
    request_id: z.string().nullable(),
    created_at: z.number(),
    updated_at: z.number(),
    deadline_at: z.number(),
  })
  .transform((r) => ({
    id: r.id,
    keyId: r.key_id,
    idempotencyKey: r.idempotency_key,
    requestHash: r.request_hash,
    cacheKey: r.cache_key,
    status: r.status,
    options: r.options,
    input: { width: r.input_width, height: r.input_height, type: r.input_type },
    backend: r.backend,
    runner: r.runner,
    model: r.model,
    outputs: r.outputs,
    runnerMs: r.runner_ms,
    error: r.error,
    webhookUrl: r.webhook_url,
    origin: r.origin,
    requestId: r.request_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    deadlineAt: r.deadline_at,
  }));
export type JobRecord = z.output<typeof rowSchema>;

export type NewJob = Omit<JobRecord, "runner" | "model" | "outputs" | "runnerMs" | "error" | "updatedAt">;

const parse = (row: unknown): JobRecord => rowSchema.parse(row);

/** Inserts the job; returns null when the key already used this Idempotency-Key (UNIQUE). */
export async function insertJob(db: D1Database, job: NewJob, done?: { outputs: Output[]; model: Model | null }): Promise<JobRecord | null> {
  const row = await db
    .prepare(
      `INSERT INTO jobs (id, key_id, idempotency_key, request_hash, cache_key, status, options, input_width, input_height,
         input_type, backend, model, outputs, runner_ms, webhook_url, origin, request_id, created_at, updated_at, deadline_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (key_id, idempotency_key) DO NOTHING RETURNING *`,
    )
    .bind(
      job.id,
      job.keyId,
      job.idempotencyKey,
      job.requestHash,
      job.cacheKey,
      job.status,
      JSON.stringify(job.options),
      job.input.width,
      job.input.height,
      job.input.type,
      job.backend,
      done?.model ? JSON.stringify(done.model) : null,
      done ? JSON.stringify(done.outputs) : null,
      done ? 0 : null,
      job.webhookUrl,
      job.origin,
      job.requestId,
      job.createdAt,
      job.createdAt,
      job.deadlineAt,
    )
    .first();
  return row ? parse(row) : null;
}

export async function getJob(db: D1Database, id: string): Promise<JobRecord | null> {
  const row = await db.prepare("SELECT * FROM jobs WHERE id = ?").bind(id).first();
  return row ? parse(row) : null;
}

export async function findByIdempotencyKey(db: D1Database, keyId: string, idempotencyKey: string): Promise<JobRecord | null> {
  const row = await db.prepare("SELECT * FROM jobs WHERE key_id = ? AND idempotency_key = ?").bind(keyId, idempotencyKey).first();
  return row ? parse(row) : null;
}

/** Unfinished jobs, those closest to their deadline first: the cron trigger's work list. */
export async function listUnfinished(db: D1Database, limit: number): Promise<JobRecord[]> {
  const { results } = await db
    .prepare("SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY deadline_at LIMIT ?")
    .bind(limit)
    .all();
  return results.map(parse);
}

export async function findByRunner(db: D1Database, backend: string, runner: string): Promise<JobRecord | null> {
  const row = await db.prepare("SELECT * FROM jobs WHERE backend = ? AND runner = ?").bind(backend, runner).first();
  return row ? parse(row) : null;
}

/**
 * A finished job with the same cache key, by any API key: its outputs answer this request. The
 * caller's own job comes first, as its result URLs may be reused as they are; another key's may not.
 */
export async function findCached(db: D1Database, cacheKey: string, keyId: string): Promise<JobRecord | null> {
  const row = await db
    .prepare(
      `SELECT * FROM jobs WHERE cache_key = ? AND status = 'succeeded' AND outputs IS NOT NULL
       ORDER BY key_id = ? DESC, created_at LIMIT 1`,
    )
    .bind(cacheKey, keyId)
    .first();
  return row ? parse(row) : null;
}

export async function markRunning(db: D1Database, id: string, runner: string, now = Date.now()): Promise<void> {
  await db.prepare("UPDATE jobs SET status = 'running', runner = ?, updated_at = ? WHERE id = ? AND status = 'queued'").bind(runner, now, id).run();
}

export type Outcome = { status: "succeeded"; outputs: Output[]; model: Model; runnerMs: number } | { status: "failed"; error: JobError };

/** Moves a job to its final state; true only for the one caller that made the transition. */
export async function finishJob(db: D1Database, id: string, outcome: Outcome, now = Date.now()): Promise<boolean> {
  const statement =
    outcome.status === "succeeded"
      ? db
          .prepare(
            `UPDATE jobs SET status = 'succeeded', outputs = ?, model = ?, runner_ms = ?, updated_at = ?
             WHERE id = ? AND status IN ('queued', 'running')`,
          )
          .bind(JSON.stringify(outcome.outputs), JSON.stringify(outcome.model), outcome.runnerMs, now, id)
      : db
          .prepare("UPDATE jobs SET status = 'failed', error = ?, updated_at = ? WHERE id = ? AND status IN ('queued', 'running')")
          .bind(JSON.stringify(outcome.error), now, id);
  const result = await statement.run();
  return result.meta.changes > 0;
}

/**
 * Frees the idempotency key of a failed job, so that the same key may start a new job. CDN URLs use
 * it to retry a failed variant after a pause, instead of repeating its failure forever.
 */
export async function releaseIdempotencyKey(db: D1Database, id: string): Promise<void> {
  await db.prepare("UPDATE jobs SET idempotency_key = NULL WHERE id = ? AND status = 'failed'").bind(id).run();
}
