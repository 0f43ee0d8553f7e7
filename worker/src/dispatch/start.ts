import type { ApiKey } from "../auth/keys";
import { randomId, sha256Hex } from "../crypto";
import { ProblemError } from "../http/problem";
import { meterOf } from "../meter/client";
import { recordEvent } from "../meter/ledger";
import { type JobRecord, findCached, insertJob, markRunning } from "../storage/jobs";
import { copyResults } from "../storage/results";
import type { NormalizedOptions } from "../validate/options";
import { IMAGE_TYPES, type ImageInfo } from "../validate/sniff";
import { attemptDelivery, deliveryOf, enqueueWebhook } from "../webhooks/deliver";
import { type JobDeps, conclude, megapixels } from "./lifecycle";
import { DispatchError } from "./types";

/**
 * Starting one upscale, for every way a job comes in (the upscale API, CDN URLs): the result cache
 * first (free, counted in the ledger), then quota reserved in the key's meter, then a runner. The
 * caller has already refused everything that can be refused for free (size, type, options).
 */
export interface UpscaleRequest {
  key: Pick<ApiKey, "id" | "monthlyQuotaMp">;
  image: ImageInfo;
  bytes: Uint8Array<ArrayBuffer>;
  options: NormalizedOptions;
  idempotencyKey: string | null;
  webhookUrl: string | null;
}

/** `requestHash` names what the client asked for; `cacheKey` adds the model that answers it. */
export interface RequestHashes {
  requestHash: string;
  cacheKey: string;
}

export type Started =
  | { outcome: "cached" | "dispatched"; job: JobRecord }
  /** The key already used this idempotency key: the caller reads that job instead. */
  | { outcome: "conflict" };

export async function hashRequest(bytes: Uint8Array, options: NormalizedOptions, modelVersion: string): Promise<RequestHashes> {
  const imageHash = await sha256Hex(bytes);
  const requestHash = await sha256Hex(`${imageHash}\n${JSON.stringify(options)}`);
  return { requestHash, cacheKey: await sha256Hex(`${requestHash}\n${modelVersion}`) };
}

function secondsToNextMonth(now = new Date()): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
  return Math.ceil((next - now.getTime()) / 1000);
}

export async function startUpscale(
  deps: JobDeps & { jobTimeoutS: number },
  request: UpscaleRequest,
  hashes: RequestHashes,
  now = Date.now(),
): Promise<Started> {
  const { env, dispatcher } = deps;
  const { key, image, options } = request;
  const inputMp = megapixels(image.width, image.height);
  const base = {
    id: randomId("j"),
    keyId: key.id,
    idempotencyKey: request.idempotencyKey,
    requestHash: hashes.requestHash,
    cacheKey: hashes.cacheKey,
    options,
    input: { width: image.width, height: image.height, type: image.type },
    webhookUrl: request.webhookUrl,
    createdAt: now,
    deadlineAt: now + deps.jobTimeoutS * 1000,
  };

  const cached = await findCached(env.DB, hashes.cacheKey, key.id);
  // The computation is shared across keys, the result URLs are not: they name a job, and a key must
  // see only its own jobs. Another key's outputs are copied under this job's prefix first.
  const outputs = cached?.outputs && (cached.keyId === key.id ? cached.outputs : await copyResults(env.RESULTS, cached.outputs, base.id, options.format));
  if (cached && outputs) {
    const job = await insertJob(env.DB, { ...base, status: "succeeded", backend: "cache" }, { outputs, model: cached.model });
    if (!job) {
      if (outputs !== cached.outputs) await env.RESULTS.delete(outputs.map((o) => o.key));
      return { outcome: "conflict" };
    }
    const outputMp = outputs.reduce((sum, o) => sum + megapixels(o.width, o.height), 0);
    await recordEvent(env.DB, { jobId: job.id, keyId: key.id, inputMp, outputMp, runnerMs: 0, cacheHit: true });
    if (job.webhookUrl) {
      const event = { type: "upscale.succeeded" as const, timestamp: new Date(now).toISOString(), data: { id: job.id, status: "succeeded" as const } };
      await enqueueWebhook(env.DB, { jobId: job.id, keyId: key.id, url: job.webhookUrl, event });
      const delivery = await deliveryOf(env.DB, job.id);
      if (delivery) deps.defer?.(attemptDelivery(env.DB, delivery.id));
    }
    return { outcome: "cached", job };
  }

  const meter = meterOf(env, key.id);
  const reservation = await meter.reserve(base.id, inputMp, key.monthlyQuotaMp);
  if (!reservation.ok) {
    throw new ProblemError(
      {
        status: 429,
        code: "quota_exceeded",
        title: "The monthly quota of this key is used up",
        detail: `This image needs ${inputMp} MP; ${Math.max(0, reservation.remainingMp)} MP remain this month.`,
      },
      { "retry-after": String(secondsToNextMonth()) },
    );
  }
  const job = await insertJob(env.DB, { ...base, status: "queued", backend: dispatcher.backend });
  if (!job) {
    await meter.refund(base.id);
    return { outcome: "conflict" };
  }

  try {
    const { runner } = await dispatcher.submit({ id: job.id, image: request.bytes, contentType: IMAGE_TYPES[image.type], width: image.width, height: image.height, options });
    await markRunning(env.DB, job.id, runner);
    return { outcome: "dispatched", job: { ...job, status: "running", runner } };
  } catch (error) {
    if (!(error instanceof DispatchError)) throw error;
    await conclude(deps, job, { status: "failed", error: { code: error.code, title: error.message } });
    throw new ProblemError(
      {
        status: error.retryable ? 503 : 422,
        code: error.code,
        title: error.retryable ? "No runner is available; try again" : "The image was refused by the runner",
        jobId: job.id,
      },
      error.retryable ? { "retry-after": "5" } : {},
    );
  }
}
