import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { apiKeyAuth } from "../auth/middleware";
import { configOf } from "../config";
import { dispatcherFor } from "../dispatch";
import type { AppEnv } from "../env";
import { openApiRouter, problemResponses } from "../http/openapi";
import { ProblemError } from "../http/problem";
import { type JobDeps, advance, isDone, refresh, waitFor } from "../jobs/lifecycle";
import { submitUpscale } from "../jobs/submit";
import { rateLimit } from "../meter/middleware";
import { checkWebhookUrl } from "../security/webhook-url-policy";
import type { JobRecord } from "../storage/jobs";
import { readUpload } from "../validate/body";
import { checkLimits } from "../validate/limits";
import { normalizeUpscaleOptions, parseUpscaleParams, upscaleParamsSchema } from "../validate/options";
import { sniffImage } from "../validate/sniff";
import { assertResultsKept, jobIdParams, jobResourceSchema, ownJob, toResource } from "./upscale-resource";

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

/** The answer to a POST: 200 when done, 202 with Location while running, a problem when failed, canceled, deleted or expired. */
async function answer(c: Context<AppEnv>, job: JobRecord, headers: Record<string, string> = {}): Promise<Response> {
  const config = configOf(c.env);
  assertResultsKept(job, config);
  const resource = await toResource(job, new URL(c.req.url).origin, config);
  if (job.status === "canceled") {
    throw new ProblemError({ status: 409, code: "job_canceled", title: "The job was canceled", jobId: job.id }, headers);
  }
  if (job.status === "failed") {
    throw new ProblemError(
      { status: 502, code: job.error?.code ?? "job_failed", title: job.error?.title ?? "The job failed", jobId: job.id },
      headers,
    );
  }
  const pending = !isDone(job);
  const response = c.json(resource, pending ? 202 : 200);
  for (const [name, value] of Object.entries(headers)) response.headers.set(name, value);
  if (pending) {
    response.headers.set("location", `/v1/upscales/${job.id}`);
    response.headers.set("retry-after", "1");
  }
  return response;
}

export const createUpscale = createRoute({
  method: "post",
  path: "/v1/upscales",
  operationId: "createUpscale",
  tags: ["upscales"],
  security: [{ apiKey: [] }],
  summary: "Upscale an image to x1 (cleaned), x2 and/or x4",
  description:
    "The image is the raw body (any image Content-Type; the type is read from the bytes) or the `image` part of multipart/form-data, whose other parts may carry the options instead of the query string. `Prefer: wait=<s>` answers when the job is done (up to MAX_WAIT_S); otherwise 202 with the job to poll.",
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
      },
    },
  },
  responses: {
    200: { description: "Done (or a cache hit): one signed URL per scale", content: { "application/json": { schema: jobResourceSchema } } },
    202: { description: "Accepted; poll Location", content: { "application/json": { schema: jobResourceSchema } } },
    ...problemResponses(400, 401, 403, 409, 410, 413, 415, 422, 429, 502, 503),
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
    throw new ProblemError({ status: 400, code: "invalid_idempotency_key", title: "Idempotency-Key must be 1 to 255 visible ASCII characters" });
  }
  const upload = await readUpload(c, config.MAX_UPLOAD_BYTES);
  const params = parseUpscaleParams({ ...c.req.query(), ...upload.fields });
  if (params.webhook_url !== undefined) {
    checkWebhookUrl(params.webhook_url, { insecure: config.ALLOW_INSECURE_ORIGINS, forbidden: [origin, ...config.RUNNER_URLS] });
  }
  const image = sniffImage(upload.bytes);
  const options = normalizeUpscaleOptions(params, c.req.header("accept"));
  checkLimits(image, options.scales, config.MAX_OUTPUT_PIXELS);

  const { outcome, job } = await submitUpscale(
    { ...deps, jobTimeoutS: config.JOB_TIMEOUT_S },
    { key: c.get("apiKey"), image, bytes: upload.bytes, options, idempotencyKey, webhookUrl: params.webhook_url ?? null },
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
