import { inputKey, jobRecordKey, parseResultKey, resultPrefix } from "@hvar/contract";
import { sendStateKey } from "./uploads";

/**
 * Results in R2 under `results/<job id>/x<scale>.<ext>` (packages/contract's `resultKey`, the key the
 * runner reports in `outputs`), with the output's sha256 in custom metadata: it is the strong ETag
 * of every download. A cache hit's outputs are the files of the job it shares them with
 * (jobs/result-cache.ts); its URLs still name it (`ownResultPath`).
 */
const PUBLIC_PREFIX = "/v1/";

/** The public path of a stored result, which its signed URL signs. */
export function resultPath(key: string): string {
  return `${PUBLIC_PREFIX}${key}`;
}

/** The public path of a job's output: under the job's own id, wherever its file is (a cache hit shares another's). */
export function ownResultPath(jobId: string, key: string): string {
  return resultPath(filesAt(key, jobId));
}

/** The key of the same output file under another job's prefix. */
export function filesAt(key: string, jobId: string): string {
  return `${resultPrefix(jobId)}${key.slice(key.lastIndexOf("/") + 1)}`;
}

/** The result key a public path names, or null when it names none. */
export function resultKeyOf(path: string): string | null {
  const key = path.startsWith(PUBLIC_PREFIX) ? path.slice(PUBLIC_PREFIX.length) : "";
  return parseResultKey(key) ? key : null;
}

export interface StoredResult {
  key: string;
  contentType: string;
  sha256: string;
  bytes: number;
}

export async function putResult(bucket: R2Bucket, result: StoredResult, body: ReadableStream | ArrayBuffer): Promise<void> {
  const value = body instanceof ReadableStream ? body.pipeThrough(new FixedLengthStream(result.bytes)) : body;
  await bucket.put(result.key, value, {
    httpMetadata: { contentType: result.contentType, cacheControl: "public, max-age=31536000, immutable" },
    customMetadata: { sha256: result.sha256 },
    sha256: result.sha256,
  });
}

/**
 * Deletes every stored result of the job (its whole prefix, so also outputs a runner wrote for a job
 * that did not succeed), and `alsoKeys` with the first batch.
 */
export async function deleteJobResults(bucket: R2Bucket, jobId: string, alsoKeys: readonly string[] = []): Promise<number> {
  let deleted = 0;
  let cursor: string | undefined;
  let extra = [...alsoKeys];
  do {
    const listing = await bucket.list({ prefix: resultPrefix(jobId), ...(cursor ? { cursor } : {}) });
    const keys = [...listing.objects.map((o) => o.key), ...extra];
    extra = [];
    if (keys.length > 0) await bucket.delete(keys);
    deleted += keys.length;
    cursor = listing.truncated ? listing.cursor : undefined;
  } while (cursor);
  return deleted;
}

/**
 * Deletes everything stored for the job: its results (unless `results` is false: they may be shared,
 * jobs/delete.ts releases them), the input a job that timed out may have left (inputs/<job>, and its
 * send state) and the record a runner wrote (jobs/<job>.json). One list and one delete for a job
 * with a few results.
 */
export async function deleteJobObjects(bucket: R2Bucket, jobId: string, { results = true } = {}): Promise<void> {
  const others = [inputKey(jobId), sendStateKey(jobId), jobRecordKey(jobId)];
  if (results) await deleteJobResults(bucket, jobId, others);
  else await bucket.delete(others);
}
