import type { Model, Output } from "@hvar/contract";
import { configOf } from "../config";
import type { Bindings } from "../env";
import { IsolateCache } from "../storage/isolate-cache";
import { type SharedResults, findCached } from "../storage/jobs";
import { resultsCutoff } from "./retention";

/**
 * The result cache: a finished job with the same cache key (image bytes, options, model version)
 * answers a new request at once, for free. The new job shares the result files of the job that
 * computed them (`results_of`, migrations/0009): nothing is copied, and its URLs still name only
 * itself (jobs/resource.ts signs them under its own id; routes/results.ts finds the files). Files are
 * deleted when no job holding them keeps its results (jobs/delete.ts, releaseResults), so deleting one
 * job never takes another's. A hit shares only files whose owner has not expired, so they are needed
 * at most twice RESULT_TTL_DAYS after they were made (the bucket's lifecycle rule, infra/r2-lifecycle.ts).
 *
 * The index (which files answer a cache key) is read from D1 once per cache key and
 * RESULT_INDEX_TTL_MS in an isolate; whether they are still held is checked by the job's insert
 * itself (storage/jobs.ts, insertJob), which fails when they are not, and D1 is asked again.
 */
export interface CachedResult {
  outputs: Output[];
  model: Model | null;
  /** The clean-up strength the files were made at (what `auto` chose for the image); null where unknown. */
  cleanup: number | null;
  shares: SharedResults;
}

const RESULT_INDEX_TTL_MS = 60_000;
type Indexed = { owner: string; filesCreatedAt: number; outputs: Output[]; model: Model | null; cleanup: number | null };
const index = new IsolateCache<string, Indexed>({ ttlMs: RESULT_INDEX_TTL_MS, maxEntries: 10_000 });

function resultOf(entry: Indexed, cutoff: number): CachedResult {
  return { outputs: entry.outputs, model: entry.model, cleanup: entry.cleanup, shares: { owner: entry.owner, createdAfter: cutoff } };
}

/**
 * The cached result for this request, as the isolate remembers it (`fresh`: false) or as D1 has it
 * now (true); null on a miss.
 */
export async function lookUpResult(env: Bindings, cacheKey: string, fresh = false): Promise<CachedResult | null> {
  const cutoff = resultsCutoff(configOf(env));
  const remembered = fresh ? undefined : index.get(cacheKey);
  if (remembered && remembered.filesCreatedAt > cutoff) return resultOf(remembered, cutoff);
  index.delete(cacheKey);
  const found = await findCached(env.DB, cacheKey, cutoff);
  if (!found?.job.outputs) return null;
  const { job, filesCreatedAt } = found;
  const entry = { owner: job.resultsOf ?? job.id, filesCreatedAt, outputs: job.outputs ?? [], model: job.model, cleanup: job.cleanupApplied };
  index.set(cacheKey, entry);
  return resultOf(entry, cutoff);
}
