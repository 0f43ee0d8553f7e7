import { DomainError, ENCODING_VERSION } from "@hvar/contract";
import type { ApiKey } from "../auth/keys";
import { DispatchError } from "../dispatch/types";
import { sha256Hex } from "../security/crypto";
import type { Bindings } from "../env";
import { type JobRecord, type NewJob, findByIdempotencyKey, insertJob, markRunning, releaseIdempotencyKey } from "../storage/jobs";
import type { ReceivedInput } from "../storage/uploads";
import type { NormalizedOptions } from "../validate/options";
import { IMAGE_TYPES, type ImageInfo } from "../validate/sniff";
import { cacheHitOfInsertedJob, megapixels, totalMegapixels } from "./billing";
import { type JobDeps, giveUp } from "./lifecycle";
import { enqueueCompletion, sendSoon } from "./notify";
import { refundQuota, reserveQuota } from "./quota";
import { lookUpResult } from "./result-cache";

/**
 * Starting one upscale, for every way a job comes in (the upscale API, CDN URLs): the result cache
 * first (free, counted in the ledger), then quota reserved in the key's meter, then a runner. The
 * caller has already refused everything that can be refused for free (size, type, options).
 */
export interface UpscaleRequest {
  /** Chosen before the image was stored: the image is at inputs/<id> (`input`). */
  id: string;
  key: Pick<ApiKey, "id" | "monthlyQuotaMp">;
  image: ImageInfo;
  input: ReceivedInput;
  options: NormalizedOptions;
  idempotencyKey: string | null;
  webhookUrl: string | null;
  /** The worker's origin the request came to: where the job's result URLs point. */
  origin: string;
  /** The request's X-Request-Id: the job is logged under it, by the worker and by its runner. */
  requestId: string | null;
}

/**
 * `requestHash` names what the client asked for (what an Idempotency-Key binds): the image, by its
 * bytes or by its URL, and the options. `cacheKey` names the computation (the result cache's key):
 * the image's bytes, the options, the model that answers them and the encoding of its files.
 */
export interface RequestHashes {
  requestHash: string;
  cacheKey: string;
}

export type Started =
  | { outcome: "cached" | "dispatched"; job: JobRecord }
  /** The key already used this idempotency key: the caller reads that job instead. */
  | { outcome: "conflict" };

/** `image` is the image bytes' sha256, or `url <href>` for an image sent by URL. */
export async function requestHashOf(image: string, options: NormalizedOptions): Promise<string> {
  return sha256Hex(`${image}\n${JSON.stringify(options)}`);
}

/**
 * By the image's sha256; `requestHash` defaults to the one of the bytes (an upload), an image sent by
 * URL has its own. `encoding` is the runners' (ENCODING_VERSION): another one makes other files.
 */
export async function hashRequest(imageSha256: string, options: NormalizedOptions, modelVersion: string, requestHash?: string, encoding = ENCODING_VERSION): Promise<RequestHashes> {
  const computation = await requestHashOf(imageSha256, options);
  return { requestHash: requestHash ?? computation, cacheKey: await sha256Hex(`${computation}\n${modelVersion}\nencoding ${encoding}`) };
}

/**
 * The job answered by the result cache, sharing the result files (jobs/result-cache.ts), with its
 * ledger row in the same D1 round trip; null on a miss. Files this isolate remembered that are no
 * longer held make D1 be asked again; files no longer held at all are a miss.
 */
async function fromCache(env: Bindings, job: NewJob, inputMp: number): Promise<Started | null> {
  for (const fresh of [false, true]) {
    const cached = await lookUpResult(env, job.cacheKey, fresh);
    if (!cached) return null;
    const hit = cacheHitOfInsertedJob(env.DB, { jobId: job.id, keyId: job.keyId, inputMp, outputMp: totalMegapixels(cached.outputs) });
    const inserted = await insertJob(env.DB, job, cached, [hit]);
    if (inserted) return { outcome: "cached", job: inserted };
    if (job.idempotencyKey !== null && (await findByIdempotencyKey(env.DB, job.keyId, job.idempotencyKey))) return { outcome: "conflict" };
  }
  return null;
}

/**
 * Starts the job. Its input (inputs/<id>) becomes the backend's once the job is dispatched (the
 * backend deletes it when the job ends); in every other case (a cache hit, a conflict, a refusal,
 * an error) it is deleted here.
 */
export async function startUpscale(deps: JobDeps & { jobTimeoutS: number }, request: UpscaleRequest, hashes: RequestHashes, now = Date.now()): Promise<Started> {
  let started: Started | undefined;
  try {
    started = await begin(deps, request, hashes, now);
    return started;
  } finally {
    if (started?.outcome !== "dispatched") await request.input.discard();
  }
}

async function begin(deps: JobDeps & { jobTimeoutS: number }, request: UpscaleRequest, hashes: RequestHashes, now: number): Promise<Started> {
  const { env, dispatcher } = deps;
  const { key, image, options } = request;
  const inputMp = megapixels(image.width, image.height);
  const base = {
    id: request.id,
    keyId: key.id,
    idempotencyKey: request.idempotencyKey,
    requestHash: hashes.requestHash,
    cacheKey: hashes.cacheKey,
    options,
    input: { width: image.width, height: image.height, type: image.type },
    webhookUrl: request.webhookUrl,
    origin: request.origin,
    requestId: request.requestId,
    createdAt: now,
    deadlineAt: now + deps.jobTimeoutS * 1000,
  };

  const hit = await fromCache(env, { ...base, status: "succeeded", backend: "cache" }, inputMp);
  if (hit) {
    if (hit.outcome === "cached") {
      await enqueueCompletion(env, hit.job, now);
      sendSoon(env.DB, hit.job, deps.defer);
    }
    return hit;
  }

  await reserveQuota(env, key, base.id, inputMp);
  const job = await insertJob(env.DB, { ...base, status: "queued", backend: dispatcher.backend });
  if (!job) {
    await refundQuota(env, key.id, base.id);
    return { outcome: "conflict" };
  }

  try {
    const { runner } = await dispatcher.submit({ id: job.id, input: await request.input.stored(), contentType: IMAGE_TYPES[image.type], width: image.width, height: image.height, options, requestId: job.requestId });
    await markRunning(env.DB, job.id, runner);
    return { outcome: "dispatched", job: { ...job, status: "running", runner } };
  } catch (error) {
    if (!(error instanceof DispatchError)) throw error;
    // A submit that timed out may still have been taken (a busy runner answers late): stopped, so
    // that no compute is spent on a job that is refunded now. The job keeps the error's public code
    // and title, never its reason (which may name a runner).
    const { kind, code, title, detail, retryAfterS } = error;
    await giveUp(deps, job, { status: "failed", error: { kind, code, title } });
    // No runner took the job, so it did no billable work: its Idempotency-Key is free again and a
    // retry runs again. A refusal of the image itself stays, and a retry replays it as it was.
    if (error.retryable) await releaseIdempotencyKey(env.DB, job.id);
    throw new DomainError({
      kind,
      code,
      title,
      ...(detail === undefined ? {} : { detail }),
      ...(retryAfterS === undefined ? {} : { retryAfterS }),
      extensions: { jobId: job.id },
    });
  }
}
