import { z } from "@hono/zod-openapi";

/**
 * The D1 ledger: one row per job and key, written with INSERT OR IGNORE on UNIQUE(job_id, key_id),
 * so however often a job is finalized (a waiting request, a poll, a retry) it is counted once.
 */
export interface LedgerEvent {
  jobId: string;
  keyId: string;
  inputMp: number;
  outputMp: number;
  runnerMs: number;
  cacheHit: boolean;
}

/**
 * The event of a job inserted in the same batch (storage/jobs.ts, insertJob's `alongside`): written
 * only when the job's row exists, so an insert that lost an Idempotency-Key race counts nothing.
 */
export function eventOfInsertedJob(db: D1Database, event: LedgerEvent, now = Date.now()): D1PreparedStatement {
  return db
    .prepare(
      `INSERT OR IGNORE INTO usage_ledger (job_id, key_id, input_mp, output_mp, runner_ms, cache_hit, created_at)
       SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?)`,
    )
    .bind(event.jobId, event.keyId, event.inputMp, event.outputMp, event.runnerMs, event.cacheHit ? 1 : 0, now, event.jobId);
}

export async function recordEvent(db: D1Database, event: LedgerEvent, now = Date.now()): Promise<boolean> {
  const result = await db
    .prepare(
      `INSERT OR IGNORE INTO usage_ledger (job_id, key_id, input_mp, output_mp, runner_ms, cache_hit, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(event.jobId, event.keyId, event.inputMp, event.outputMp, event.runnerMs, event.cacheHit ? 1 : 0, now)
    .run();
  return result.meta.changes > 0;
}

export const usageBucketSchema = z
  .object({
    period: z.string().openapi({ example: "2026-11-30" }),
    billableMp: z.number().openapi({ description: "Input megapixels of billed jobs" }),
    outputMp: z.number(),
    jobs: z.number().int().openapi({ description: "Billed jobs" }),
    cacheHits: z.number().int().openapi({ description: "Answers served from the cache (not billed)" }),
    runnerMs: z.number().int(),
  })
  .openapi("UsageBucket");
export type UsageBucket = z.infer<typeof usageBucketSchema>;

const bucketRowSchema = z.object({
  period: z.string(),
  billable_mp: z.number(),
  output_mp: z.number(),
  jobs: z.number(),
  cache_hits: z.number(),
  runner_ms: z.number(),
});

/** Sums the ledger by UTC day ("2026-11-30") or month ("2026-11") over [from, to). */
export async function usageBy(
  db: D1Database,
  keyId: string,
  granularity: "day" | "month",
  from: number,
  to: number,
): Promise<UsageBucket[]> {
  const format = granularity === "day" ? "%Y-%m-%d" : "%Y-%m";
  const { results } = await db
    .prepare(
      `SELECT strftime('${format}', created_at / 1000, 'unixepoch') AS period,
              COALESCE(SUM(CASE WHEN cache_hit = 0 THEN input_mp END), 0) AS billable_mp,
              COALESCE(SUM(CASE WHEN cache_hit = 0 THEN output_mp END), 0) AS output_mp,
              SUM(cache_hit = 0) AS jobs,
              SUM(cache_hit = 1) AS cache_hits,
              COALESCE(SUM(runner_ms), 0) AS runner_ms
       FROM usage_ledger WHERE key_id = ? AND created_at >= ? AND created_at < ?
       GROUP BY period ORDER BY period`,
    )
    .bind(keyId, from, to)
    .all();
  return results.map((row) => {
    const r = bucketRowSchema.parse(row);
    return {
      period: r.period,
      billableMp: r.billable_mp,
      outputMp: r.output_mp,
      jobs: r.jobs,
      cacheHits: r.cache_hits,
      runnerMs: r.runner_ms,
    };
  });
}
