import { type RunnerJob, jobRecordKey, runnerJobSchema } from "@hvar/contract";
import { z } from "zod";
import type { ObjectStore } from "../storage/store";

/**
 * Job records in the store that the replicas of one deployment share (R2 in production), so that a
 * job's state does not depend on which replica a load balancer sends a request to.
 *
 * `jobs/<id>.json` (the contract's jobRecordKey) is a RunnerJob. While the job runs it carries a
 * lease: the replica that owns it, that replica's boot (one per process) and the time of its last
 * heartbeat; the owner rewrites it every heartbeat with the job's progress. An ended job's record has
 * no lease. The worker's parsers ignore the lease (it is not part of the contract's Job).
 *
 * `jobs/<id>.cancel` asks the owner to cancel the job: any replica may write it, the owner reads it on
 * its next heartbeat and removes it once the job's final record is stored.
 */

export const leaseSchema = z.object({
  /** HVAR_REPLICA_ID of the owner: a Pod's name, stable across restarts of its container. */
  replica: z.string(),
  /** One per runner process: a record of this replica with another boot was left by a runner that died. */
  boot: z.string(),
  /** Unix ms of the owner's last heartbeat, by its clock. */
  heartbeatAt: z.number(),
  /** 1 at admission, one more at each take-over: of two owners, the later one's lease ranks higher. */
  generation: z.number().int().positive(),
});
export type Lease = z.infer<typeof leaseSchema>;

/**
 * Orders leases: generation first, then owner. The store has no compare-and-swap, so an owner's
 * heartbeat may overwrite a take-over that came between its read and its write; both owners read
 * the record again at their next heartbeat, and the one whose lease ranks lower lets go. The record's
 * last writer before that read stays, so exactly one owner runs the job on.
 */
export function outranks(a: Lease, b: Lease): boolean {
  if (a.generation !== b.generation) return a.generation > b.generation;
  return `${a.replica}/${a.boot}` > `${b.replica}/${b.boot}`;
}

const jobRecordSchema = runnerJobSchema.extend({ lease: leaseSchema.optional() });
export type JobRecord = z.infer<typeof jobRecordSchema>;

const cancelMarkKey = (jobId: string) => `jobs/${jobId}.cancel`;

export class JobRecords {
  constructor(private readonly store: ObjectStore) {}

  async read(jobId: string): Promise<JobRecord | undefined> {
    const stored = await this.store.get(jobRecordKey(jobId));
    return stored ? jobRecordSchema.parse(JSON.parse(stored.bytes.toString("utf8"))) : undefined;
  }

  /** Stores the job as it is: in flight under `lease`, or ended without one. */
  write(job: RunnerJob, lease?: Lease): Promise<void> {
    const record: JobRecord = lease ? { ...job, lease } : job;
    return this.store.put(jobRecordKey(job.id), Buffer.from(JSON.stringify(record)), "application/json");
  }

  markCanceled(jobId: string): Promise<void> {
    return this.store.put(cancelMarkKey(jobId), Buffer.from("{}"), "application/json");
  }

  async cancelMarked(jobId: string): Promise<boolean> {
    return (await this.store.get(cancelMarkKey(jobId))) !== undefined;
  }

  clearCancelMark(jobId: string): Promise<void> {
    return this.store.delete(cancelMarkKey(jobId));
  }
}

/** The record as the API answers it: the contract's Job, without the lease. */
export function withoutLease(record: JobRecord): RunnerJob {
  const job = { ...record };
  delete job.lease;
  return job;
}
