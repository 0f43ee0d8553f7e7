import { type OutputFormat, type Scale, inputKey, jobRecordKey, parseResultKey, resultKey, resultPrefix } from "@hvar/contract";
import { sendStateKey } from "./uploads";

/**
 * Results in R2 under `results/<job id>/x<scale>.<ext>` (packages/contract's `resultKey`, the key the
 * runner reports in `outputs`), with the output's sha256 in custom metadata: it is the strong ETag
 * of every download.
 */
const PUBLIC_PREFIX = "/v1/";

/** The public path of a stored result, which its signed URL signs. */
export function resultPath(key: string): string {
  return `${PUBLIC_PREFIX}${key}`;
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

/** Results copied under another job's prefix (a cache hit), every source found, ready to be written. */
export interface ResultCopy<T> {
  copies: T[];
  /** Writes the copies, side by side. */
  write(): Promise<void>;
  /** Deletes whatever copies were written (the job was not created after all). */
  discard(): Promise<void>;
}

/**
 * Reads the stored results to copy them to another job's prefix (a cache hit), so that the job's
 * URLs name only that job. Null when a source is gone: the caller computes the result again.
 */
export async function copyResults<T extends StoredResult & { scale: Scale }>(
  bucket: R2Bucket,
  results: readonly T[],
  jobId: string,
  format: OutputFormat,
): Promise<ResultCopy<T> | null> {
  const sources = await Promise.all(results.map((result) => bucket.get(result.key)));
  const found = results.flatMap((result, i) => {
    const source = sources[i];
    return source ? [{ copy: { ...result, key: resultKey(jobId, result.scale, format) }, body: source.body }] : [];
  });
  if (found.length < results.length) {
    await Promise.all(found.map(({ body }) => body.cancel()));
    return null;
  }
  const copies = found.map(({ copy }) => copy);
  return {
    copies,
    write: async () => {
      await Promise.all(found.map(({ copy, body }) => putResult(bucket, copy, body)));
    },
    discard: () => bucket.delete(copies.map((copy) => copy.key)),
  };
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
 * Deletes everything stored for the job: its results, the input a job that timed out may have left
 * (inputs/<job>, and its send state) and the record a runner wrote (jobs/<job>.json). One list and one delete for a
 * job with a few results.
 */
export async function deleteJobObjects(bucket: R2Bucket, jobId: string): Promise<void> {
  await deleteJobResults(bucket, jobId, [inputKey(jobId), sendStateKey(jobId), jobRecordKey(jobId)]);
}
