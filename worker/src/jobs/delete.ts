import type { Bindings } from "../env";
import { IsolateCache } from "../storage/isolate-cache";
import { type JobRecord, isDeleted, markDeleted } from "../storage/jobs";
import { deleteJobResults } from "../storage/results";
import { forgetResult } from "./result-cache";

/**
 * DELETE /v1/upscales/{id}: a finished job's results leave R2 now. The job's row stays, marked
 * deleted (its usage and Idempotency-Key keep their meaning), so reads of it answer 410, the list
 * leaves it out, the result cache no longer answers from it, and its signed URLs stop working
 * (routes/results.ts asks resultsDeleted before any cache): at once in this isolate, within
 * DELETION_BOUND_MS in every other. Marked first, then deleted: a DELETE that dies half-way leaves
 * nothing reachable, and a second one deletes what is left.
 * False for a job that has not ended (cancel it first).
 */
export async function deleteUpscale(env: Bindings, job: JobRecord): Promise<boolean> {
  if (!(await markDeleted(env.DB, job.id))) return false;
  deletionMarks.set(job.id, true);
  forgetResult(job);
  await deleteJobResults(env.RESULTS, job.id);
  return true;
}

/**
 * How long an isolate trusts a job's deletion mark as it read it from D1: the bound within which a
 * DELETE made elsewhere stops the job's signed URLs here (downloads read D1 once per job and bound,
 * not once per request).
 */
export const DELETION_BOUND_MS = 5_000;
const deletionMarks = new IsolateCache<string, boolean>({ ttlMs: DELETION_BOUND_MS, maxEntries: 10_000 });

/** Whether the job's results were deleted, as D1 said at most DELETION_BOUND_MS ago (or this isolate's own DELETE). */
export async function resultsDeleted(db: D1Database, jobId: string): Promise<boolean> {
  const known = deletionMarks.get(jobId);
  if (known !== undefined) return known;
  const deleted = await isDeleted(db, jobId);
  deletionMarks.set(jobId, deleted);
  return deleted;
}
