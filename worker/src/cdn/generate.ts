import { DomainError, inputKey, isOutputFormat } from "@hvar/contract";
import type { ApiKey } from "../auth/keys";
import type { Config } from "../config";
import { dispatcherFor, dispatcherOf, edgeLimits } from "../dispatch";
import type { Bindings } from "../env";
import { type JobDeps, failureOf, isDone, waitFor } from "../jobs/lifecycle";
import { isExpired, resultsCutoff } from "../jobs/retention";
import { hashRequest, startUpscale } from "../jobs/start";
import { meterOf } from "../meter/client";
import { randomId, sha256Hex } from "../security/crypto";
import type { SourcePolicy } from "../security/source-policy";
import { type JobRecord, findByIdempotencyKey, releaseExpiredIdempotencyKey, releaseIdempotencyKey } from "../storage/jobs";
import { checkLimits } from "../validate/limits";
import type { NormalizedOptions } from "../validate/options";
import { sniffImage } from "../validate/sniff";
import { type Base, type Variant, contentTypeOf, metadataOf, putImage } from "./cache";
import { MAX_SOURCE_REDIRECTS, fetchSource } from "./fetch-source";
import type { CdnOptions } from "./grammar";

/**
 * The miss path: a variant that is in neither cache. The model runs once per base (a source's
 * scale, cache.ts), through the same job path as the upscale API (startUpscale: the result cache
 * by image bytes, quota in the key's meter, a runner, the ledger), so a base is billed exactly like
 * an API job, and once. Every variant of the base (width, height, fit, format, quality) is then
 * derived from the stored base by Cloudflare Images, without a runner and without a bill: a page
 * with three widths of one photo runs the model once.
 *
 * The base's job has the idempotency key `cdn:<base hash>`, so concurrent requests for one new
 * base (several sizes of one photo on one page) share one job instead of starting one each. A
 * failed base answers its failure for RETRY_FAILED_AFTER_MS, then its key is released and the
 * next request tries again.
 */
const RETRY_FAILED_AFTER_MS = 60_000;

export interface GenerateRequest {
  env: Bindings;
  config: Config;
  key: ApiKey;
  source: URL;
  policy: SourcePolicy;
  options: CdnOptions;
  variant: Variant;
  /** The worker's own origin (for backends that call back). */
  origin: string;
  /** The request's X-Request-Id: a job it starts is logged under it. */
  requestId: string;
  defer: (work: Promise<unknown>) => void;
}

export interface Generated {
  /** True when this request already wrote its ledger row (a billed job, or a result-cache hit). */
  counted: boolean;
}

/** What the runner is asked for: the base's scale and clean-up, lossless, so that each variant is encoded once, at the end. */
function jobOptionsOf(base: Base): NormalizedOptions {
  return { scales: [base.scale], format: "png", quality: null, temperature: 0, cleanup: base.cleanup };
}

async function takeRateToken(env: Bindings, key: ApiKey): Promise<void> {
  const decision = await meterOf(env, key.id).take(key.rateLimitPerMin);
  if (!decision.ok) {
    throw new DomainError({
      kind: "limit_reached",
      code: "rate_limited",
      title: "Too many new images",
      detail: `This key allows ${decision.limit} new images per minute.`,
      retryAfterS: decision.retryAfterS,
    });
  }
}

/** Starts the job (or finds the one a concurrent request started); null when nothing is usable yet. */
async function jobFor(request: GenerateRequest, deps: JobDeps, idempotencyKey: string): Promise<{ job: JobRecord; counted: boolean }> {
  const { env, config, key, variant } = request;
  const existing = await findByIdempotencyKey(env.DB, key.id, idempotencyKey);
  // A job the key canceled (POST /v1/upscales/{id}/cancel) is no failure of the image: the next request runs it again.
  const retry = existing?.status === "canceled" || (existing?.status === "failed" && Date.now() - existing.updatedAt >= RETRY_FAILED_AFTER_MS);
  // A job whose results expired (jobs/retention.ts) runs again: its outputs may be gone from R2.
  if (existing && isExpired(existing, config)) {
    await releaseExpiredIdempotencyKey(env.DB, existing.id, resultsCutoff(config));
  } else if (existing && retry) {
    await releaseIdempotencyKey(env.DB, existing.id);
  } else if (existing) {
    return { job: existing, counted: false };
  }

  await takeRateToken(env, key);
  const id = randomId("j");
  const target = { bucket: env.RESULTS, key: inputKey(id), limits: await edgeLimits(config, deps.dispatcher) };
  const scales = [request.options.scale];
  const limits = { timeoutMs: config.CDN_SOURCE_TIMEOUT_MS, maxRedirects: MAX_SOURCE_REDIRECTS };
  const { image, input } = await fetchSource(request.source, request.policy, limits, target, scales);
  const options = jobOptionsOf(variant.base);
  try {
    checkLimits(image, scales, target.limits);
  } catch (error) {
    await input.discard();
    throw error;
  }
  const hashes = await hashRequest(input.sha256, options, config.MODEL_VERSION);
  const started = await startUpscale({ ...deps, jobTimeoutS: config.JOB_TIMEOUT_S }, { id, key, image, input, options, idempotencyKey, webhookUrl: null, origin: request.origin, requestId: request.requestId }, hashes);
  if (started.outcome !== "conflict") return { job: started.job, counted: true };
  const winner = await findByIdempotencyKey(env.DB, key.id, idempotencyKey);
  if (!winner) throw new Error("idempotency conflict without a job");
  return { job: winner, counted: false };
}

/**
 * Waits for a job this request started or joined, on the backend it was dispatched to. A joined
 * job may still be queued without a runner (its request is dispatching it): `advance` reads such a
 * job again from D1 before each poll.
 */
async function waitForJob(request: GenerateRequest, deps: JobDeps, job: JobRecord, until: number): Promise<JobRecord> {
  const dispatcher = job.backend === deps.dispatcher.backend ? deps.dispatcher : dispatcherOf(request.env, request.config, job);
  if (!dispatcher) throw new Error(`no dispatcher for backend ${job.backend}`);
  return waitFor({ ...deps, dispatcher }, job, until);
}

/** Stores the variant in R2, computing its base first when that is missing; the caller serves it from there. */
export async function generateVariant(request: GenerateRequest): Promise<Generated> {
  const { env, variant } = request;
  const counted = (await env.RESULTS.head(variant.base.r2Key)) ? false : (await generateBase(request)).counted;
  if (variant.r2Key !== variant.base.r2Key) await deriveVariant(env, variant, request.options);
  return { counted };
}

/** Runs (or joins) the base's job, then stores its output as the base. */
async function generateBase(request: GenerateRequest): Promise<Generated> {
  const { env, config, variant } = request;
  const deps: JobDeps = { env, dispatcher: dispatcherFor(env, config, request.origin), defer: request.defer };
  const { job, counted } = await jobFor(request, deps, `cdn:${variant.base.hash}`);

  const done = isDone(job) ? job : await waitForJob(request, deps, job, Date.now() + config.MAX_WAIT_S * 1000);
  if (done.status === "failed") throw failureOf(done, "The image could not be generated");
  if (done.status !== "succeeded") {
    throw new DomainError({ kind: "unavailable", code: "result_pending", title: "The image is still being generated; try again", retryAfterS: 5, extensions: { jobId: done.id } });
  }
  const output = done.outputs?.find((o) => o.scale === variant.base.scale);
  if (!output) throw new Error(`job ${done.id} has no x${variant.base.scale} output`);
  const result = await env.RESULTS.get(output.key);
  if (!result) throw new Error(`output ${output.key} is missing from R2`);
  const metadata = { sha256: output.sha256, width: output.width, height: output.height, inputWidth: done.input.width, inputHeight: done.input.height };
  await putImage(env.RESULTS, { r2Key: variant.base.r2Key, format: "png" }, result.body, metadata);
  return { counted };
}

/**
 * The variant from its stored base: Cloudflare Images fits (when a size is asked for) and encodes it, once.
 * Images encodes on a best-effort basis and may answer in another format than asked (its AVIF stops at
 * 1,200 px a side, which most x4 outputs pass): the bytes are stored, and so served, as what they are.
 */
export async function deriveVariant(env: Bindings, variant: Variant, options: CdnOptions): Promise<void> {
  const base = await env.RESULTS.get(variant.base.r2Key);
  const baseMetadata = base && metadataOf(base);
  if (!base || !baseMetadata) throw new Error(`base ${variant.base.r2Key} is missing from R2`);
  let image = env.IMAGES.input(base.body);
  if (options.width !== null || options.height !== null) {
    image = image.transform({
      ...(options.width === null ? {} : { width: options.width }),
      ...(options.height === null ? {} : { height: options.height }),
      ...(options.fit === null ? {} : { fit: options.fit }),
    });
  }
  const encoded = await image.output({ format: contentTypeOf(variant.format), ...(variant.format === "png" || options.quality === null ? {} : { quality: options.quality }) });
  const bytes = new Uint8Array(await encoded.response().arrayBuffer());
  const size = sniffImage(bytes);
  if (!isOutputFormat(size.type)) throw new Error(`Cloudflare Images answered ${size.type} for ${variant.format}`);
  const { inputWidth, inputHeight } = baseMetadata;
  await putImage(env.RESULTS, { r2Key: variant.r2Key, format: size.type }, bytes, { sha256: await sha256Hex(bytes), width: size.width, height: size.height, inputWidth, inputHeight });
}
