import type { Bindings } from "../env";
import { IsolateCache } from "../storage/isolate-cache";
import { type JobRecord, isHeld, markDeleted, resultState } from "../storage/jobs";
import { deleteJobResults } from "../storage/results";

/**
 * DELETE /v1/upscales/{id}: a finished job's results go now. The job's row stays, marked
 * deleted (its usage and Idempotency-Key keep their meaning), so reads of it answer 410, the list
 * leaves it out, the result cache no longer answers from it, and its signed URLs stop working
 * (routes/results.ts asks resultFiles before any cache): at once in this isolate, within
 * DELETION_BOUND_MS in every other. The files leave R2 unless another job still holds them (a
 * cache hit shares them, jobs/result-cache.ts): then they go with the last one. Marked first, then
 * released: a DELETE that dies half-way leaves nothing reachable, and a second one releases what is left.
 * False for a job that has not ended (cancel it first).
 */
export async function deleteUpscale(env: Bindings, job: JobRecord): Promise<boolean> {
  if (!(await markDeleted(env.DB, job.id))) return false;
  states.set(job.id, { deleted: true, filesOf: job.resultsOf ?? job.id });
  await releaseResults(env, job.resultsOf ?? job.id);
  return true;
}

/**
 * Deletes the result files under `owner`'s prefix (and whatever a runner left there) once no job
 * holding them keeps its results: call it after marking a holder deleted or expired. A job that
 * shares them is inserted only while one is held (storage/jobs.ts, insertJob), so none can appear
 * after this check finds none.
 */
export async function releaseResults(env: Bindings, owner: string): Promise<void> {
  if (!(await isHeld(env.DB, owner))) await deleteJobResults(env.RESULTS, owner);
}

/**
 * How long an isolate trusts a job's deletion mark as it read it from D1: the bound within which a
 * DELETE made elsewhere stops the job's signed URLs here (downloads read D1 once per job and bound,
 * not once per request).
 */
export const DELETION_BOUND_MS = 5_000;
type ResultState = { deleted: boolean; filesOf: string };
const states = new IsolateCache<string, ResultState>({ ttlMs: DELETION_BOUND_MS, maxEntries: 10_000 });

/**
 * Whether the job's results were deleted, as D1 said at most DELETION_BOUND_MS ago (or this isolate's
 * own DELETE), and whose prefix holds its files (its own, or the job a cache hit shares them with).
 */
export async function resultFiles(db: D1Database, jobId: string): Promise<ResultState> {
  const known = states.get(jobId);
  if (known !== undefined) return known;
  const state = (await resultState(db, jobId)) ?? { deleted: false, filesOf: jobId };
  states.set(jobId, state);
  return state;
}
