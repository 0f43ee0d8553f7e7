import type { Dispatcher } from "../dispatch/types";
import type { JobRecord } from "../storage/jobs";
import { type JobDeps, advance, conclude, isDone, stopAtBackend } from "./lifecycle";

/**
 * A customer's cancel (POST /v1/upscales/{id}/cancel). The work stops at the backend first (the
 * runner drops the job's tiles from its queue), then the job ends `canceled`: its reservation is
 * refunded in full, once (a canceled job has no result, so none of it is billed), and its webhook
 * says `upscale.canceled`. The backend has the last word on a job that ended meanwhile: one that
 * succeeded before the cancel reached it stays succeeded and billed. Returns the job as it ended;
 * a job that had already ended is returned as it is. A job whose backend is no longer configured
 * (`dispatcher` null) has no work left to stop and is canceled here.
 */
export async function cancelUpscale(deps: Omit<JobDeps, "dispatcher"> & { dispatcher: Dispatcher | null }, job: JobRecord): Promise<JobRecord> {
  if (isDone(job)) return job;
  const { dispatcher } = deps;
  if (!dispatcher) return conclude(deps, job, { status: "canceled" });
  await stopAtBackend(dispatcher, job);
  const current = await advance({ ...deps, dispatcher }, job);
  return isDone(current) ? current : conclude(deps, current, { status: "canceled" });
}
