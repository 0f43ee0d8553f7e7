import { createRoute, z } from "@hono/zod-openapi";
import { DomainError, type Scale, inputKey } from "@hvar/contract";
import type { Context } from "hono";
import type { ApiKey } from "../auth/keys";
import { apiKeyAuth } from "../auth/middleware";
import { MAX_SOURCE_REDIRECTS, fetchSource } from "../cdn/fetch-source";
import { type Config, configOf } from "../config";
import { dispatcherFor, edgeLimits } from "../dispatch";
import type { AppEnv } from "../env";
import { openApiRouter, problemResponses } from "../http/openapi";
import { problemResponse } from "../http/problem";
import { type JobDeps, advance, failureOf, isDone, refresh, waitFor } from "../jobs/lifecycle";
import { assertResultsKept, goneProblem, jobIdParams, jobResourceSchema, ownJob, toResource } from "../jobs/resource";
import { type Submission, submitUpscale } from "../jobs/submit";
import { rateLimit } from "../meter/middleware";
import { checkSource } from "../security/source-policy";
import { checkWebhookUrl } from "../security/webhook-url-policy";
import type { JobRecord } from "../storage/jobs";
import { randomId } from "../security/crypto";
import { type Upload, type UploadTarget, readUpload } from "../validate/body";
import { checkLimits } from "../validate/limits";
import { type UpscaleParams, normalizeUpscaleOptions, parseUpscaleFromUrl, upscaleFromUrlSchema, upscaleParamsSchema } from "../validate/options";

/**
 * POST /v1/upscales and GET /v1/upscales/{id}. Order of work: key, rate limit, then everything
 * that can refuse the request for free (size, type, dimensions, options), then the cache, and only
 * then quota and a runner.
 */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
/** How long a 202's background driver keeps polling (waitUntil lives about 30 s after the answer). */
const BACKGROUND_DRIVE_MS = 25_000;

function preferredWaitS(prefer: string | undefined, maxWaitS: number): number {
  const wait = /(?:^|[,;\s])wait=(\d+)/i.exec(prefer ?? "")?.[1];
  return wait === undefined ? 0 : Math.min(Number(wait), maxWaitS);
}

/** The answer to a POST: 200 when done, 202 with Location while running, the job's own problem when failed, canceled, deleted or expired. */
async function answer(c: Context<AppEnv>, job: JobRecord, headers: Record<string, string> = {}): Promise<Response> {
  const config = configOf(c.env);
  const gone = goneProblem(job, config);
  if (gone) return problemResponse(gone, headers);
  const resource = await toResource(job, new URL(c.req.url).origin, config);
  if (job.status === "canceled") {
    return problemResponse(new DomainError({ kind: "conflict", code: "job_canceled", title: "The job was canceled", extensions: { jobId: job.id } }), headers);
  }
  if (job.status === "failed") return problemResponse(failureOf(job), headers);
  const pending = !isDone(job);
  const response = c.json(resource, pending ? 202 : 200);
  for (const [name, value] of Object.entries(headers)) response.headers.set(name, value);
  if (pending) {
    response.headers.set("location", `/v1/upscales/${job.id}`);
    response.headers.set("retry-after", "1");
  }
  return response;
}

/** The options and the image of a body: an image streamed into R2 at inputs/<job id>, or the image's URL. */
function requestOf(upload: Upload, query: Record<string, string>, key: ApiKey, config: Config, target: UploadTarget): { params: UpscaleParams; source: Submission["source"] } {
  if (upload.kind === "url") {
    const { image, ...params } = parseUpscaleFromUrl({ ...query, ...upload.json });
    return { params, source: imageByUrl(image, key, config, params.scales, target) };
  }
  const { params, image, input } = upload;
  return { params, source: { kind: "stored", image, input } };
}

/**
 * An image by URL, under the CDN sources' rules (security/source-policy.ts): refused now unless it
 * lies under one of the key's CDN origins on a public https host, and fetched (cdn/fetch-source.ts:
 * every redirect checked again, the size capped while streaming it into R2) only when a new job needs it.
 */
function imageByUrl(image: string, key: ApiKey, config: Config, scales: readonly Scale[], target: UploadTarget): Submission["source"] {
  const policy = { allowed: key.cdnOrigins, insecure: config.ALLOW_INSECURE_ORIGINS };
  const url = checkSource(image, policy);
  const limits = { timeoutMs: config.CDN_SOURCE_TIMEOUT_MS, maxRedirects: MAX_SOURCE_REDIRECTS };
  return {
    kind: "url",
    url: url.href,
    fetch: async () => {
      const fetched = await fetchSource(url, policy, limits, target, scales);
      try {
        checkLimits(fetched.image, scales, target.limits);
      } catch (error) {
        await fetched.input.discard();
        throw error;
      }
      return fetched;
    },
  };
}

export const createUpscale = createRoute({
  method: "post",
  path: "/v1/upscales",
  operationId: "createUpscale",
  tags: ["upscales"],
  security: [{ apiKey: [] }],
  summary: "Upscale an image to x1 (cleaned), x2 and/or x4",
  description:
    "The image is the raw body (any image Content-Type, or application/octet-stream; the type is read from the bytes), the `image` part of multipart/form-data, whose other parts may carry the options instead of the query string, or a URL in a JSON body (`{\"image\": \"https://...\", \"scales\": [2, 4]}`), fetched under the CDN sources' rules: under one of the key's CDN origins, https on a public host, redirects checked again, the size capped. A source that cannot be used answers 403 `source_not_allowed`, `private_source` or `insecure_source`, 404 `source_not_found`, 413 `source_too_large`, 502 `source_unreachable`, `source_error` or `source_too_many_redirects`, or 504 `source_timeout`. Other Content-Types get 415 `unsupported_content_type`. The image streams into storage as it arrives: a body over the byte limit is refused with 413 `payload_too_large` (at once by its Content-Length), and an image whose header, in its first bytes, is larger than the runners accept with 422 `image_too_large`, before the rest is read and before anything is billed. `Prefer: wait=<s>` answers when the job is done (up to MAX_WAIT_S); otherwise 202 with the job to poll. Every answer carries `X-Request-Id`, the id under which the worker and the runner log the request and its job.",
  request: {
    query: upscaleParamsSchema,
    headers: z.object({
      "idempotency-key": z.string().optional().openapi({ description: "Same key and body: the same job, while its results are kept (RESULT_TTL_DAYS); different body: 409" }),
      prefer: z.string().optional().openapi({ example: "wait=30" }),
    }),
    body: {
      required: true,
      content: {
        "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) },
        "multipart/form-data": { schema: z.object({ image: z.string().openapi({ format: "binary" }) }).openapi({ additionalProperties: true }) },
        "application/json": { schema: upscaleFromUrlSchema },
      },
    },
  },
  responses: {
    200: { description: "Done (or a cache hit): one signed URL per scale", content: { "application/json": { schema: jobResourceSchema } } },
    202: { description: "Accepted; poll Location", content: { "application/json": { schema: jobResourceSchema } } },
    ...problemResponses(400, 401, 403, 404, 409, 410, 413, 415, 422, 429, 502, 503, 504),
  },
});

export const readUpscale = createRoute({
  method: "get",
  path: "/v1/upscales/{id}",
  operationId: "getUpscale",
  tags: ["upscales"],
  security: [{ apiKey: [] }],
  summary: "Read an upscale: its status, progress while it runs, and signed URLs once it succeeded",
  description:
    "Results are kept RESULT_TTL_DAYS after the upscale was created (30 by default): then it answers 410 `job_expired` (410 `job_deleted` after a DELETE), " +
    "and 404 once its record is gone too (JOB_ROW_TTL_DAYS, 90 by default). Signed URLs never outlive the results.",
  // Reads count against the key's rate limit like every other API call (pollers included), and
  // carry its RateLimit headers.
  middleware: [apiKeyAuth({ scope: "upscale" }), rateLimit()] as const,
  request: { params: jobIdParams },
  responses: {
    200: { description: "The job", content: { "application/json": { schema: jobResourceSchema } } },
    ...problemResponses(401, 403, 404, 410, 429),
  },
});

export const upscales = openApiRouter();
// The body is validated by hand (bytes, not JSON), so the route is documented but not zod-validated.
upscales.openAPIRegistry.registerPath(createUpscale);
upscales.post("/v1/upscales", apiKeyAuth({ scope: "upscale" }), rateLimit(), async (c) => {
  const config = configOf(c.env);
  const origin = new URL(c.req.url).origin;
  const deps: JobDeps = { env: c.env, dispatcher: dispatcherFor(c.env, config, origin), defer: (work) => c.executionCtx.waitUntil(work) };

  const idempotencyKey = c.req.header("idempotency-key") ?? null;
  if (idempotencyKey !== null && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
    throw new DomainError({ kind: "invalid_input", code: "invalid_idempotency_key", title: "Idempotency-Key must be 1 to 255 visible ASCII characters" });
  }
  // The job's id comes first: the image streams into R2 under it (inputs/<id>) before it is hashed.
  const id = randomId("j");
  const target: UploadTarget = { bucket: c.env.RESULTS, key: inputKey(id), limits: await edgeLimits(config, deps.dispatcher) };
  const upload = await readUpload(c, target);
  const key = c.get("apiKey");
  const { params, source } = requestOf(upload, c.req.query(), key, config, target);
  const options = normalizeUpscaleOptions(params, c.req.header("accept"), target.limits);
  try {
    if (params.webhook_url !== undefined) {
      checkWebhookUrl(params.webhook_url, { insecure: config.ALLOW_INSECURE_ORIGINS, forbidden: [origin, ...config.RUNNER_URLS] });
    }
  } catch (error) {
    if (source.kind === "stored") await source.input.discard();
    throw error;
  }

  const { outcome, job } = await submitUpscale(
    { ...deps, jobTimeoutS: config.JOB_TIMEOUT_S },
    { id, key, source, options, idempotencyKey, webhookUrl: params.webhook_url ?? null, origin, requestId: c.get("requestId") },
    config.MODEL_VERSION,
  );
  if (outcome === "cached") return answer(c, job);

  // Prefer: wait applies to every answer about a job, a replay's included: a client that retries
  // after a dropped connection must get what the first request would have given it.
  const waitS = preferredWaitS(c.req.header("prefer"), config.MAX_WAIT_S);
  const headers: Record<string, string> = outcome === "replayed" ? { "idempotent-replayed": "true" } : {};
  if (waitS > 0) return answer(c, await waitFor(deps, job, Date.now() + waitS * 1000), { ...headers, "preference-applied": `wait=${waitS}` });
  if (outcome === "replayed") return answer(c, await advance(deps, job), headers);
  c.executionCtx.waitUntil(waitFor(deps, job, Date.now() + BACKGROUND_DRIVE_MS));
  return answer(c, job);
});

upscales.openapi(readUpscale, async (c) => {
  const { id } = c.req.valid("param");
  const job = await ownJob(c.env.DB, c.get("apiKey").id, id);
  assertResultsKept(job, configOf(c.env));
  const current = await refresh(c.env, configOf(c.env), job, (work) => c.executionCtx.waitUntil(work));
  if (!isDone(current)) c.header("retry-after", "1");
  return c.json(await toResource(current, new URL(c.req.url).origin, configOf(c.env)), 200);
});
