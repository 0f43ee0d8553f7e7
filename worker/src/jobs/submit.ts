import { DomainError } from "@hvar/contract";
import { configOf } from "../config";
import { type JobRecord, findByIdempotencyKey, releaseExpiredIdempotencyKey } from "../storage/jobs";
import type { ReceivedInput } from "../storage/uploads";
import type { ImageInfo } from "../validate/sniff";
import type { JobDeps } from "./lifecycle";
import { isExpired, resultsCutoff } from "./retention";
import { type UpscaleRequest, hashRequest, requestHashOf, startUpscale } from "./start";

/**
 * A job through the upscale API, with Idempotency-Key: the same key and the same request give the
 * job the first request made (a replay), the same key with another request is a 409, and a new key
 * starts a job (startUpscale). Two first requests that race are settled by D1's UNIQUE constraint:
 * the loser replays the winner's job. A key is remembered as long as its job's results
 * (RESULT_TTL_DAYS): the key of an expired job starts a new one, whether or not the cron's
 * retention sweep has freed it yet.
 *
 * An image sent by URL is the same request as long as the URL and the options are: it is fetched
 * only when a new job needs it, never for a replay.
 */
export type Submitted = { outcome: "cached" | "dispatched" | "replayed"; job: JobRecord };

/** An image for inputs/<job id> (there already, or held until a job needs it), with the type and size read from its bytes. */
export interface LoadedImage {
  image: ImageInfo;
  input: ReceivedInput;
}

/**
 * `id` is the job's, chosen before the image is stored (at inputs/<id>): an upload is there already,
 * an image sent by URL goes there when a new job fetches it.
 */
export type Submission = Omit<UpscaleRequest, "image" | "input"> & {
  source: ({ kind: "stored" } & LoadedImage) | { kind: "url"; url: string; fetch: () => Promise<LoadedImage> };
};

export async function submitUpscale(deps: JobDeps & { jobTimeoutS: number }, submission: Submission, modelVersion: string): Promise<Submitted> {
  const { env } = deps;
  const { key, idempotencyKey, options, source } = submission;
  // An image sent by URL is named by its URL until a new job fetches it.
  const early =
    source.kind === "stored" ? await hashRequest(source.input.sha256, options, modelVersion) : { requestHash: await requestHashOf(`url ${source.url}`, options), cacheKey: null };
  const { requestHash } = early;

  const replay = async (): Promise<Submitted> => {
    const existing = idempotencyKey === null ? null : await findByIdempotencyKey(env.DB, key.id, idempotencyKey);
    if (!existing) throw new Error("idempotency conflict without a job");
    if (existing.requestHash !== requestHash) {
      throw new DomainError({
        kind: "conflict",
        code: "idempotency_key_reused",
        title: "This Idempotency-Key was used with a different request",
        extensions: { jobId: existing.id },
      });
    }
    return { outcome: "replayed", job: existing };
  };
  if (idempotencyKey !== null) {
    const existing = await findByIdempotencyKey(env.DB, key.id, idempotencyKey);
    const config = configOf(env);
    if (existing && isExpired(existing, config)) await releaseExpiredIdempotencyKey(env.DB, existing.id, resultsCutoff(config));
    else if (existing) {
      // A replay needs no new input.
      if (source.kind === "stored") await source.input.discard();
      return replay();
    }
  }

  const { image, input } = source.kind === "stored" ? source : await source.fetch();
  const hashes = early.cacheKey === null ? await hashRequest(input.sha256, options, modelVersion, requestHash) : early;
  const started = await startUpscale(deps, { ...submission, image, input }, hashes);
  return started.outcome === "conflict" ? replay() : started;
}
