import type { Model, Output, OutputFormat } from "@hvar/contract";
import { configOf } from "../config";
import type { Bindings } from "../env";
import { IsolateCache } from "../storage/isolate-cache";
import { type JobRecord, findCached } from "../storage/jobs";
import { type ResultCopy, copyResults } from "../storage/results";
import { resultsCutoff } from "./retention";

/**
 * The result cache: a finished job with the same cache key (image bytes, options, model version)
 * answers a new request at once, for free. The computation is shared, the result files are not:
 * the outputs are copied under the new job's prefix, so that its URLs name only that job (a key
 * must see only its own jobs), and deleting one job's results (DELETE /v1/upscales/{id}) never
 * takes another job's.
 *
 * The index (which job answers a cache key) is read from D1 once per cache key and RESULT_INDEX_TTL_MS
 * in an isolate. A remembered job is checked again on every use, for free: its results must not have
 * expired (by its creation time), and its files must still be in R2 (they are read for the copy), or
 * D1 is asked again.
 */
export interface CachedResult extends ResultCopy<Output> {
  model: Model | null;
}

const RESULT_INDEX_TTL_MS = 60_000;
type IndexedJob = Pick<JobRecord, "id" | "model" | "createdAt"> & { outputs: Output[] };
const index = new IsolateCache<string, IndexedJob>({ ttlMs: RESULT_INDEX_TTL_MS, maxEntries: 10_000 });

async function copyFrom(env: Bindings, source: IndexedJob, jobId: string, format: OutputFormat): Promise<CachedResult | null> {
  const copy = await copyResults(env.RESULTS, source.outputs, jobId, format);
  return copy && { ...copy, model: source.model };
}

/**
 * The cached result for this request, its sources found and its copies ready to write under the new
 * job's prefix; null on a miss (or when the stored outputs are gone).
 */
export async function lookUpResult(env: Bindings, cacheKey: string, jobId: string, format: OutputFormat): Promise<CachedResult | null> {
  const cutoff = resultsCutoff(configOf(env));
  const remembered = index.get(cacheKey);
  if (remembered && remembered.createdAt > cutoff) {
    const result = await copyFrom(env, remembered, jobId, format);
    if (result) return result;
  }
  index.delete(cacheKey);
  const found = await findCached(env.DB, cacheKey, cutoff);
  if (!found?.outputs) return null;
  const source = { id: found.id, model: found.model, createdAt: found.createdAt, outputs: found.outputs };
  const result = await copyFrom(env, source, jobId, format);
  if (result) index.set(cacheKey, source);
  return result;
}

/** This isolate stops answering from the job's results at once (DELETE); others find their files gone. */
export function forgetResult(job: Pick<JobRecord, "id" | "cacheKey">): void {
  if (index.get(job.cacheKey)?.id === job.id) index.delete(job.cacheKey);
}
