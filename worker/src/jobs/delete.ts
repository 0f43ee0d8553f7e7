import type { Bindings } from "../env";
import { type JobRecord, markDeleted } from "../storage/jobs";
import { deleteJobResults } from "../storage/results";

/**
 * DELETE /v1/upscales/{id}: a finished job's results leave R2 now. The job's row stays, marked
 * deleted (its usage and Idempotency-Key keep their meaning), so reads of it answer 410, the list
 * leaves it out, the result cache no longer answers from it, and its signed URLs stop working at once
 * (routes/results.ts checks the mark before any cache). Marked first, then deleted: a DELETE that
 * dies half-way leaves nothing reachable, and a second one deletes what is left.
 * False for a job that has not ended (cancel it first).
 */
export async function deleteUpscale(env: Bindings, job: JobRecord): Promise<boolean> {
  if (!(await markDeleted(env.DB, job.id))) return false;
  await deleteJobResults(env.RESULTS, job.id);
  return true;
}
