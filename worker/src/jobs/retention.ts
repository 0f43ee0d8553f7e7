import type { Config } from "../config";
import type { Bindings } from "../env";
import { type JobRecord, deleteJobRows, listResultsToExpire, listRowsToDelete, markResultsExpired } from "../storage/jobs";
import { deleteJobObjects } from "../storage/results";
import { releaseResults } from "./delete";

/**
 * How long hvar keeps what a job leaves, counted from the job's creation (config, wrangler.toml):
 *
 * - until RESULT_TTL_DAYS: the results (R2 `results/<job>/`) and the job's Idempotency-Key. From then
 *   on, reading the job answers 410 `job_expired`, the list leaves it out, the result cache no longer
 *   answers from it, and its key may start a new job. No signed URL outlives this moment.
 * - until JOB_ROW_TTL_DAYS: the job's row, then 404 `job_not_found`, as for a job that never was.
 *   The ledger keeps its usage rows for good.
 *
 * Expiry is read from the job's creation time wherever it matters, so it applies on time whether or
 * not the cron has run; the cron's sweep then deletes what expired, a bounded batch per run, and the
 * bucket's lifecycle rules (infra/r2-lifecycle.ts) catch objects no row names any more.
 */
const DAY_MS = 86_400_000;

type Retention = Pick<Config, "RESULT_TTL_DAYS" | "JOB_ROW_TTL_DAYS">;

/** When the job's results expire (ms since the epoch). */
export function resultsExpireAt(job: Pick<JobRecord, "createdAt">, config: Retention): number {
  return job.createdAt + config.RESULT_TTL_DAYS * DAY_MS;
}

export function isExpired(job: Pick<JobRecord, "createdAt">, config: Retention, now = Date.now()): boolean {
  return resultsExpireAt(job, config) <= now;
}

/** Jobs created at or before this moment have expired results. */
export function resultsCutoff(config: Retention, now = Date.now()): number {
  return now - config.RESULT_TTL_DAYS * DAY_MS;
}

/**
 * The expiry (unix seconds) of a result URL signed now: RESULT_URL_TTL_S from now, but never after
 * the results themselves expire, so a URL never names an object that may be gone.
 */
export function resultUrlExpiry(job: Pick<JobRecord, "createdAt">, config: Retention & Pick<Config, "RESULT_URL_TTL_S">, now = Date.now()): number {
  return Math.min(Math.floor(now / 1000) + config.RESULT_URL_TTL_S, Math.floor(resultsExpireAt(job, config) / 1000));
}

export interface SweepReport {
  /** Jobs whose results were deleted and Idempotency-Keys freed. */
  resultsExpired: number;
  /** Job rows deleted. */
  rowsDeleted: number;
}

/**
 * One retention pass, at most `limit` jobs of each kind, oldest first: the results of expired jobs
 * (marked first, then their files released: deleted unless a younger cache hit still holds them,
 * jobs/delete.ts; a pass that dies half-way leaves files the bucket's lifecycle rule removes), then
 * the rows past JOB_ROW_TTL_DAYS with any objects still stored for them (local and dev buckets have
 * no lifecycle rules).
 */
export async function sweepExpired(env: Bindings, config: Retention, limit: number, now = Date.now()): Promise<SweepReport> {
  const expired = await listResultsToExpire(env.DB, resultsCutoff(config, now), limit);
  await markResultsExpired(env.DB, expired.map((job) => job.id), now);
  for (const job of expired) {
    await releaseResults(env, job.filesOf);
    await deleteJobObjects(env.RESULTS, job.id, { results: false });
  }

  const rows = await listRowsToDelete(env.DB, now - config.JOB_ROW_TTL_DAYS * DAY_MS, limit);
  for (const id of rows) {
    await releaseResults(env, id);
    await deleteJobObjects(env.RESULTS, id, { results: false });
  }
  await deleteJobRows(env.DB, rows);
  return { resultsExpired: expired.length, rowsDeleted: rows.length };
}
