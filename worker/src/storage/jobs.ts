import { z } from "@hono/zod-openapi";
import { ERROR_KINDS, type Model, type Output, type Progress, jobStatusSchema as runnerJobStatusSchema } from "@hvar/contract";
import { jobErrorSchema, modelSchema, outputSchema } from "../contract";
import { normalizedOptionsSchema } from "../validate/options";
import { IMAGE_TYPES, type ImageType } from "../validate/sniff";

/** Job records in D1 (see migrations/0002_jobs.sql for why D1 and not KV); a job goes through a runner's statuses. */

// Stored, not shown: the kind stays inside the worker (routes show `code` and `title`).
const jobFailureSchema = jobErrorSchema.extend({ kind: z.enum(ERROR_KINDS).optional() });

/** A job's status: a runner's, or `canceled`, stored as `failed` with `canceled_at` (migrations/0006). */
export const jobStatusSchema = z.enum([...runnerJobStatusSchema.options, "canceled"]);
export type JobStatus = z.infer<typeof jobStatusSchema>;

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
    status: runnerJobStatusSchema,
    options: z.string().transform((text) => JSON.parse(text) as unknown).pipe(normalizedOptionsSchema),
    input_width: z.number(),
    input_height: z.number(),
    input_type: z.enum(Object.keys(IMAGE_TYPES) as [ImageType, ...ImageType[]]),
    backend: z.string(),
    runner: z.string().nullable(),
    model: json(modelSchema),
    outputs: json(z.array(outputSchema)),
    runner_ms: z.number().nullable(),
    cleanup_applied: z.number().nullable(),
    error: json(jobFailureSchema),
    webhook_url: z.string().nullable(),
    origin: z.string().nullable(),
    request_id: z.string().nullable(),
    created_at: z.number(),
    updated_at: z.number(),
    deadline_at: z.number(),
    canceled_at: z.number().nullable(),
    deleted_at: z.number().nullable(),
    tiles_done: z.number().nullable(),
    tiles_total: z.number().nullable(),
    results_of: z.string().nullable(),
  })
  .transform((r) => ({
    id: r.id,
    keyId: r.key_id,
    idempotencyKey: r.idempotency_key,
    requestHash: r.request_hash,
    cacheKey: r.cache_key,
    status: r.canceled_at === null ? r.status : ("canceled" as const),
    options: r.options,
    input: { width: r.input_width, height: r.input_height, type: r.input_type },
    backend: r.backend,
    runner: r.runner,
    model: r.model,
    outputs: r.outputs,
    runnerMs: r.runner_ms,
    /** The clean-up strength the model applied (the options' own, or what `auto` chose); null where unknown. */
    cleanupApplied: r.cleanup_applied,
    error: r.error,
    webhookUrl: r.webhook_url,
    origin: r.origin,
    requestId: r.request_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    deadlineAt: r.deadline_at,
    progress: r.tiles_done === null || r.tiles_total === null ? null : { tilesDone: r.tiles_done, tilesTotal: r.tiles_total },
    /** Set once the job's results were deleted (DELETE /v1/upscales/{id}) or expired; the row stays. */
    deletedAt: r.deleted_at,
    /** The job whose result files are this job's outputs (a cache hit shares them); null: its own. */
    resultsOf: r.results_of,
  }));
export type JobRecord = z.output<typeof rowSchema>;

export type NewJob = Omit<JobRecord, "runner" | "model" | "outputs" | "runnerMs" | "cleanupApplied" | "error" | "updatedAt" | "progress" | "deletedAt" | "resultsOf"> & {
  status: z.infer<typeof runnerJobStatusSchema>;
};

const parse = (row: unknown): JobRecord => rowSchema.parse(row);

/** Why a job failed (its public JobError), and whose trouble that was: a failed job answers with the status of that kind. */
export type JobFailure = z.infer<typeof jobFailureSchema>;

/** The result files a cache hit shares: the job that holds them, while its results are kept. */
export interface SharedResults {
  /** The job whose prefix holds the files (the one that computed them). */
  owner: string;
  /** The owner must have been created after this (its results have not expired). */
  createdAfter: number;
}

/**
 * Whether a job that holds the files of the owner bound twice (`id`, then `results_of`) keeps its
 * results: two index lookups. Written as one `id = ? OR results_of = ?`, SQLite scanned every kept job.
 */
export const FILES_HELD =
  "(EXISTS (SELECT 1 FROM jobs WHERE id = ? AND deleted_at IS NULL) OR EXISTS (SELECT 1 FROM jobs WHERE results_of = ? AND deleted_at IS NULL))";

/**
 * Inserts the job; returns null when the key already used this Idempotency-Key (UNIQUE), or, for a
 * job sharing another's result files (`done.shares`), when those files are no longer held: no job
 * holding them (the owner or another sharer) keeps its results, or the owner's have expired. That
 * condition is checked in the insert itself, so a file release (`isHeld`) never races a new sharer.
 * `alongside` runs in the same batch (one round trip, one transaction), after the insert.
 */
export async function insertJob(
  db: D1Database,
  job: NewJob,
  done?: { outputs: Output[]; model: Model | null; cleanup: number | null; shares?: SharedResults },
  alongside: readonly D1PreparedStatement[] = [],
): Promise<JobRecord | null> {
  const shares = done?.shares;
  const values = [
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
    done?.cleanup ?? null,
    job.webhookUrl,
    job.origin,
    job.requestId,
    job.createdAt,
    job.createdAt,
    job.deadlineAt,
    shares?.owner ?? null,
  ];
  const columns = `INSERT INTO jobs (id, key_id, idempotency_key, request_hash, cache_key, status, options, input_width, input_height,
         input_type, backend, model, outputs, runner_ms, cleanup_applied, webhook_url, origin, request_id, created_at, updated_at, deadline_at, results_of)`;
  const placeholders = values.map(() => "?").join(", ");
  const insert = shares
    ? db
        .prepare(
          `${columns}
           SELECT ${placeholders}
           WHERE ${FILES_HELD} AND EXISTS (SELECT 1 FROM jobs WHERE id = ? AND created_at > ?)
           ON CONFLICT (key_id, idempotency_key) DO NOTHING RETURNING id`,
        )
        .bind(...values, shares.owner, shares.owner, shares.owner, shares.createdAfter)
    : db.prepare(`${columns} VALUES (${placeholders}) ON CONFLICT (key_id, idempotency_key) DO NOTHING RETURNING id`).bind(...values);
  const row = alongside.length === 0 ? await insert.first() : ((await db.batch([insert, ...alongside]))[0]?.results[0] ?? null);
  if (!row) return null;
  // The record is what was just written: only its id comes back, so a cache hit does not pay for
  // reading and validating the whole row again (issue 19).
  return {
    ...job,
    runner: null,
    model: done?.model ?? null,
    outputs: done?.outputs ?? null,
    runnerMs: done ? 0 : null,
    cleanupApplied: done?.cleanup ?? null,
    error: null,
    updatedAt: job.createdAt,
    progress: null,
    deletedAt: null,
    resultsOf: shares?.owner ?? null,
  };
}

export async function getJob(db: D1Database, id: string): Promise<JobRecord | null> {
  const row = await db.prepare("SELECT * FROM jobs WHERE id = ?").bind(id).first();
  return row ? parse(row) : null;
}

export async function findByIdempotencyKey(db: D1Database, keyId: string, idempotencyKey: string): Promise<JobRecord | null> {
  const row = await db.prepare("SELECT * FROM jobs WHERE key_id = ? AND idempotency_key = ?").bind(keyId, idempotencyKey).first();
  return row ? parse(row) : null;
}

/** The cron trigger's work list: unfinished jobs, those closest to their deadline first (index jobs_unfinished). */
export const UNFINISHED = "SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY deadline_at LIMIT ?";

export async function listUnfinished(db: D1Database, limit: number): Promise<JobRecord[]> {
  const { results } = await db
    .prepare(UNFINISHED)
    .bind(limit)
    .all();
  return results.map(parse);
}

export async function findByRunner(db: D1Database, backend: string, runner: string): Promise<JobRecord | null> {
  const row = await db.prepare("SELECT * FROM jobs WHERE backend = ? AND runner = ?").bind(backend, runner).first();
  return row ? parse(row) : null;
}

/**
 * A finished job with the same cache key, by any API key, whose results were not deleted and whose
 * result files were made after `createdAfter` (by it, or by the job it shares them with: they have not
 * expired): its outputs answer this request. The newest, whose results are kept longest; with the
 * creation time of its files.
 */
export async function findCached(db: D1Database, cacheKey: string, createdAfter: number): Promise<{ job: JobRecord; filesCreatedAt: number } | null> {
  const row = await db
    .prepare(
      `SELECT j.*, COALESCE(o.created_at, j.created_at) AS files_created_at FROM jobs j LEFT JOIN jobs o ON o.id = j.results_of
       WHERE j.cache_key = ? AND j.status = 'succeeded' AND j.outputs IS NOT NULL AND j.deleted_at IS NULL
         AND COALESCE(o.created_at, j.created_at) > ?
       ORDER BY j.created_at DESC LIMIT 1`,
    )
    .bind(cacheKey, createdAfter)
    .first<{ files_created_at: number }>();
  return row ? { job: parse(row), filesCreatedAt: row.files_created_at } : null;
}

export async function markRunning(db: D1Database, id: string, runner: string, now = Date.now()): Promise<void> {
  await db.prepare("UPDATE jobs SET status = 'running', runner = ?, updated_at = ? WHERE id = ? AND status = 'queued'").bind(runner, now, id).run();
}

export type Outcome = { status: "succeeded"; outputs: Output[]; model: Model; runnerMs: number; cleanup: number | null } | { status: "failed"; error: JobFailure } | { status: "canceled" };

/** Moves a job to its final state; true only for the one caller that made the transition. */
export async function finishJob(db: D1Database, id: string, outcome: Outcome, now = Date.now()): Promise<boolean> {
  const statement =
    outcome.status === "succeeded"
      ? db
          .prepare(
            `UPDATE jobs SET status = 'succeeded', outputs = ?, model = ?, runner_ms = ?, cleanup_applied = ?, updated_at = ?
             WHERE id = ? AND status IN ('queued', 'running')`,
          )
          .bind(JSON.stringify(outcome.outputs), JSON.stringify(outcome.model), outcome.runnerMs, outcome.cleanup, now, id)
      : outcome.status === "failed"
        ? db
            .prepare("UPDATE jobs SET status = 'failed', error = ?, updated_at = ? WHERE id = ? AND status IN ('queued', 'running')")
            .bind(JSON.stringify(outcome.error), now, id)
        : db
            .prepare("UPDATE jobs SET status = 'failed', canceled_at = ?, updated_at = ? WHERE id = ? AND status IN ('queued', 'running')")
            .bind(now, now, id);
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

/** Records the job's progress while it runs; the list and later reads show it. */
export async function recordProgress(db: D1Database, id: string, progress: Progress, now = Date.now()): Promise<void> {
  await db
    .prepare("UPDATE jobs SET tiles_done = ?, tiles_total = ?, updated_at = ? WHERE id = ? AND status IN ('queued', 'running')")
    .bind(progress.tilesDone, progress.tilesTotal, now, id)
    .run();
}

/** Marks a finished job's results deleted (the first time only); false when the job is not finished. */
export async function markDeleted(db: D1Database, id: string, now = Date.now()): Promise<boolean> {
  const result = await db
    .prepare("UPDATE jobs SET deleted_at = COALESCE(deleted_at, ?), updated_at = ? WHERE id = ? AND status IN ('succeeded', 'failed')")
    .bind(now, now, id)
    .run();
  return result.meta.changes > 0;
}

/** Frees the Idempotency-Key of a job created before `createdBefore` (its results expired), so that the key may start a new job. */
export async function releaseExpiredIdempotencyKey(db: D1Database, id: string, createdBefore: number): Promise<void> {
  await db.prepare("UPDATE jobs SET idempotency_key = NULL WHERE id = ? AND created_at <= ?").bind(id, createdBefore).run();
}

/**
 * Finished jobs created before `createdBefore` whose results are still in R2, oldest first (the
 * partial index jobs_results_kept, migrations/0008): the retention sweep's work list.
 */
export async function listResultsToExpire(db: D1Database, createdBefore: number, limit: number): Promise<{ id: string; filesOf: string }[]> {
  const { results } = await db
    .prepare("SELECT id, results_of FROM jobs WHERE deleted_at IS NULL AND created_at <= ? AND status IN ('succeeded', 'failed') ORDER BY created_at LIMIT ?")
    .bind(createdBefore, limit)
    .all<{ id: string; results_of: string | null }>();
  return results.map((r) => ({ id: r.id, filesOf: r.results_of ?? r.id }));
}

/** Marks the jobs' results gone (deleted_at, as a deletion does) and frees their Idempotency-Keys. */
export async function markResultsExpired(db: D1Database, ids: readonly string[], now = Date.now()): Promise<void> {
  if (ids.length === 0) return;
  await db
    .prepare(`UPDATE jobs SET deleted_at = COALESCE(deleted_at, ?), idempotency_key = NULL, updated_at = ? WHERE id IN (${ids.map(() => "?").join(", ")})`)
    .bind(now, now, ...ids)
    .run();
}

/** Finished jobs created before `createdBefore`, oldest first (index jobs_created, migrations/0008): rows the retention sweep deletes. */
export async function listRowsToDelete(db: D1Database, createdBefore: number, limit: number): Promise<string[]> {
  const { results } = await db
    .prepare("SELECT id FROM jobs WHERE created_at <= ? AND status IN ('succeeded', 'failed') ORDER BY created_at LIMIT ?")
    .bind(createdBefore, limit)
    .all<{ id: string }>();
  return results.map((r) => r.id);
}

/** Deletes the jobs' rows, their webhook deliveries first (which reference them); the ledger keeps its rows. */
export async function deleteJobRows(db: D1Database, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  const list = ids.map(() => "?").join(", ");
  await db.batch([
    db.prepare(`DELETE FROM webhook_deliveries WHERE job_id IN (${list})`).bind(...ids),
    db.prepare(`DELETE FROM jobs WHERE id IN (${list})`).bind(...ids),
  ]);
}

/** Whether the job's results were deleted (or expired), and whose prefix holds its files; null for a job without a record. */
export async function resultState(db: D1Database, id: string): Promise<{ deleted: boolean; filesOf: string } | null> {
  const row = await db.prepare("SELECT deleted_at, results_of FROM jobs WHERE id = ?").bind(id).first<{ deleted_at: number | null; results_of: string | null }>();
  return row ? { deleted: row.deleted_at !== null, filesOf: row.results_of ?? id } : null;
}

/** Whether a job that holds the owner's result files (the owner itself, or a job sharing them) still keeps its results. */
export async function isHeld(db: D1Database, owner: string): Promise<boolean> {
  const row = await db.prepare(`SELECT ${FILES_HELD} AS held`).bind(owner, owner).first<{ held: number }>();
  return row?.held === 1;
}

/** Where a page of the list starts: after this job, in the list's order. */
export interface ListPosition {
  createdAt: number;
  id: string;
}

/** SQL for each status filter; `canceled` and `failed` share the stored status (migrations/0006). */
const STATUS_FILTER: Record<JobStatus, string> = {
  queued: "status = 'queued'",
  running: "status = 'running'",
  succeeded: "status = 'succeeded'",
  failed: "status = 'failed' AND canceled_at IS NULL",
  canceled: "status = 'failed' AND canceled_at IS NOT NULL",
};

/**
 * A page of the key's jobs that were not deleted, created after `createdAfter` (results not
 * expired), newest first (ties by id), after `after`; one range of the index jobs_key_created or
 * jobs_key_status_created (migrations/0006).
 */
export async function listJobs(
  db: D1Database,
  keyId: string,
  query: { status: JobStatus | null; after: ListPosition | null; createdAfter: number; limit: number },
): Promise<JobRecord[]> {
  const conditions = ["key_id = ?", "deleted_at IS NULL", "created_at > ?"];
  const bindings: (string | number)[] = [keyId, query.createdAfter];
  if (query.status) conditions.push(STATUS_FILTER[query.status]);
  if (query.after) {
    conditions.push("(created_at, id) < (?, ?)");
    bindings.push(query.after.createdAt, query.after.id);
  }
  const { results } = await db
    .prepare(`SELECT * FROM jobs WHERE ${conditions.join(" AND ")} ORDER BY created_at DESC, id DESC LIMIT ?`)
    .bind(...bindings, query.limit)
    .all();
  return results.map(parse);
}
