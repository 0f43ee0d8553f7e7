import { eventOfInsertedJob, recordEvent } from "../meter/ledger";

/**
 * The ledger side of billing (meter/ledger.ts): one row per job and key, for billed jobs and for
 * free cache hits alike, so usage shows both. Jobs are billed by input megapixels.
 */
export const megapixels = (width: number, height: number) => (width * height) / 1e6;

export const totalMegapixels = (images: readonly { width: number; height: number }[]) =>
  images.reduce((sum, image) => sum + megapixels(image.width, image.height), 0);

export interface BilledUse {
  jobId: string;
  keyId: string;
  inputMp: number;
  outputMp: number;
}

/** A job a runner computed: billed (its quota is settled alongside, jobs/quota.ts). */
export async function recordBilledJob(db: D1Database, use: BilledUse & { runnerMs: number }): Promise<void> {
  await recordEvent(db, { ...use, cacheHit: false });
}

/** An answer from a cache (the result cache, or the CDN's): free, and counted. */
export async function recordCacheHit(db: D1Database, use: BilledUse): Promise<void> {
  await recordEvent(db, { ...use, runnerMs: 0, cacheHit: true });
}

/** recordCacheHit of a job being inserted, in the insert's batch (counted only if the job is). */
export function cacheHitOfInsertedJob(db: D1Database, use: BilledUse): D1PreparedStatement {
  return eventOfInsertedJob(db, { ...use, runnerMs: 0, cacheHit: true });
}
