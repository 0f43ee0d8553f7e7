import type { Model, Output, OutputFormat } from "@hvar/contract";
import { configOf } from "../config";
import type { Bindings } from "../env";
import { findCached } from "../storage/jobs";
import { copyResults } from "../storage/results";
import { resultsCutoff } from "./retention";

/**
 * The result cache: a finished job with the same cache key (image bytes, options, model version)
 * answers a new request at once, for free. The computation is shared, the result files are not:
 * the outputs are copied under the new job's prefix, so that its URLs name only that job (a key
 * must see only its own jobs), and deleting one job's results (DELETE /v1/upscales/{id}) never
 * takes another job's.
 */
export interface CachedResult {
  outputs: Output[];
  model: Model | null;
  /** Deletes the copies made for the new job, when that job is not created after all. */
  discard(): Promise<void>;
}

/** The cached result for this request, ready to be the job's; null on a miss (or when the stored outputs are gone). */
export async function lookUpResult(env: Bindings, cacheKey: string, jobId: string, format: OutputFormat): Promise<CachedResult | null> {
  const cached = await findCached(env.DB, cacheKey, resultsCutoff(configOf(env)));
  if (!cached?.outputs) return null;
  const copies = await copyResults(env.RESULTS, cached.outputs, jobId, format);
  if (!copies) return null;
  return { outputs: copies, model: cached.model, discard: () => env.RESULTS.delete(copies.map((o) => o.key)) };
}
