import { createRoute, z } from "@hono/zod-openapi";
import { jobStatusSchema } from "@hvar/contract";
import type { Context } from "hono";
import { apiKeyAuth } from "../auth/middleware";
import { type Config, configOf } from "../config";
import { dispatcherFor, dispatcherOf } from "../dispatch";
import { type JobDeps, isDone, megapixels, advance, waitFor } from "../dispatch/lifecycle";
import { hashRequest, startUpscale } from "../dispatch/start";
import { jobErrorSchema, modelSchema } from "../dispatch/types";
import type { AppEnv } from "../env";
import { openApiRouter, problemResponses } from "../http/openapi";
import { ProblemError } from "../http/problem";
import { rateLimit } from "../meter/middleware";
import { signResultPath } from "../sign/result-url";
import { type JobRecord, findByIdempotencyKey, getJob } from "../storage/jobs";
import { resultPath } from "../storage/results";
import { readUpload } from "../validate/body";
import { checkLimits } from "../validate/limits";
import { normalizeOptions, normalizedOptionsSchema, parseUpscaleParams, upscaleParamsSchema } from "../validate/options";
import { sniffImage } from "../validate/sniff";
import { checkWebhookUrl } from "../webhooks/url-policy";

/**
 * POST /v1/upscales and GET /v1/upscales/{id}. Order of work: key, rate limit, then everything
 * that can refuse the request for free (size, type, dimensions, options), then the cache, and only
 * then quota and a runner.
 */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
/** How long a 202's background driver keeps polling (waitUntil lives about 30 s after the answer). */
const BACKGROUND_DRIVE_MS = 25_000;

const jobResourceSchema = z
  .object({
    id: z.string(),
    status: jobStatusSchema,
    createdAt: z.iso.datetime(),
    model: modelSchema.nullable(),
    options: normalizedOptionsSchema,
    input: z.object({ width: z.number().int(), height: z.number().int(), type: z.string(), megapixels: z.number() }),
    outputs: z
      .array(
        z.object({
          scale: z.number().int(),
          url: z.url().openapi({ description: "Signed; valid until `urlsExpireAt`" }),
          contentType: z.string(),
          width: z.number().int(),
          height: z.number().int(),
          bytes: z.number().int(),
        }),
      )
      .optional(),
    urlsExpireAt: z.iso.datetime().optional(),
    usage: z.object({
      inputMp: z.number(),
      cacheHit: z.boolean(),
      billable: z.boolean().openapi({ description: "Cache hits are not billed" }),
    }),
    error: jobErrorSchema.optional(),
  })
  .openapi("Upscale");
type JobResource = z.infer<typeof jobResourceSchema>;

async function toResource(job: JobRecord, origin: string, config: Config): Promise<JobResource> {
  const inputMp = megapixels(job.input.width, job.input.height);
  const cacheHit = job.backend === "cache";
  const now = Date.now();
  const outputs =
    job.status === "succeeded" && job.outputs
      ? await Promise.all(
          job.outputs.map(async (o) => ({
            scale: o.scale,
            url: origin + (await signResultPath(resultPath(o.key), config.RESULT_SIGNING_KEYS, config.RESULT_URL_TTL_S, now)),
            contentType: o.contentType,
            width: o.width,
            height: o.height,
            bytes: o.bytes,
          })),
        )
      : undefined;
  return {
    id: job.id,
    status: job.status,
    createdAt: new Date(job.createdAt).toISOString(),
    model: job.model,
    options: job.options,
    input: { ...job.input, megapixels: inputMp },
    ...(outputs ? { outputs, urlsExpireAt: new Date((Math.floor(now / 1000) + config.RESULT_URL_TTL_S) * 1000).toISOString() } : {}),
    usage: { inputMp, cacheHit, billable: !cacheHit && job.status === "succeeded" },
    ...(job.error ? { error: job.error } : {}),
  };
}

function preferredWaitS(prefer: string | undefined, maxWaitS: number): number {
  const wait = /(?:^|[,;\s])wait=(\d+)/i.exec(prefer ?? "")?.[1];
  return wait === undefined ? 0 : Math.min(Number(wait), maxWaitS);
}

/** The answer to a POST: 200 when done, 202 with Location while running, a problem when failed. */
async function answer(c: Context<AppEnv>, job: JobRecord, headers: Record<string, string> = {}): Promise<Response> {
  const config = configOf(c.env);
  const resource = await toResource(job, new URL(c.req.url).origin, config);
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
  tags: ["upscales"],
  security: [{ apiKey: [] }],
  summary: "Upscale an image to x1 (cleaned), x2 and/or x4",
  description:
    "The image is the raw body (any image Content-Type; the type is read from the bytes) or the `image` part of multipart/form-data, whose other parts may carry the options instead of the query string. `Prefer: wait=<s>` answers when the job is done (up to MAX_WAIT_S); otherwise 202 with the job to poll.",
  request: {
    query: upscaleParamsSchema,
    headers: z.object({
      "idempotency-key": z.string().optional().openapi({ description: "Same key and body: the same job; different body: 409" }),
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
    ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429, 502, 503),
  },
});

export const readUpscale = createRoute({
  method: "get",
  path: "/v1/upscales/{id}",
  tags: ["upscales"],
  security: [{ apiKey: [] }],
  request: { params: z.object({ id: z.string().openapi({ param: { name: "id", in: "path" } }) }) },
  responses: {
    200: { description: "The job", content: { "application/json": { schema: jobResourceSchema } } },
    ...problemResponses(401, 403, 404, 429),
  },
});

export const upscales = openApiRouter();
// The body is validated by hand (bytes, not JSON), so the route is documented but not zod-validated.
upscales.openAPIRegistry.registerPath(createUpscale);
upscales.post("/v1/upscales", apiKeyAuth({ scope: "upscale" }), rateLimit(), async (c) => {
  const config = configOf(c.env);
  const key = c.get("apiKey");
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
  const options = normalizeOptions(params, c.req.header("accept"));
  checkLimits(image, options.scales, config.MAX_OUTPUT_PIXELS);

  const hashes = await hashRequest(upload.bytes, options, config.MODEL_VERSION);

  // Prefer: wait applies to every answer about a job, a replay's included: a client that retries
  // after a dropped connection must get what the first request would have given it.
  const waitS = preferredWaitS(c.req.header("prefer"), config.MAX_WAIT_S);
  const waited = async (job: JobRecord, headers: Record<string, string> = {}): Promise<Response> =>
    answer(c, await waitFor(deps, job, Date.now() + waitS * 1000), { ...headers, "preference-applied": `wait=${waitS}` });

  const replay = async (): Promise<Response> => {
    const existing = idempotencyKey === null ? null : await findByIdempotencyKey(c.env.DB, key.id, idempotencyKey);
    if (!existing) throw new Error("idempotency conflict without a job");
    if (existing.requestHash !== hashes.requestHash) {
      throw new ProblemError({
        status: 409,
        code: "idempotency_key_reused",
        title: "This Idempotency-Key was used with a different request",
        jobId: existing.id,
      });
    }
    const replayed = { "idempotent-replayed": "true" };
    return waitS > 0 ? waited(existing, replayed) : answer(c, await advance(deps, existing), replayed);
  };
  if (idempotencyKey !== null && (await findByIdempotencyKey(c.env.DB, key.id, idempotencyKey))) return replay();

  const started = await startUpscale(
    { ...deps, jobTimeoutS: config.JOB_TIMEOUT_S },
    { key, image, bytes: upload.bytes, options, idempotencyKey, webhookUrl: params.webhook_url ?? null },
    hashes,
  );
  if (started.outcome === "conflict") return replay();
  if (started.outcome === "cached") return answer(c, started.job);
  const running = started.job;

  if (waitS > 0) return waited(running);
  c.executionCtx.waitUntil(waitFor(deps, running, Date.now() + BACKGROUND_DRIVE_MS));
  return answer(c, running);
});

// Reads count against the key's rate limit like every other API call (pollers included), and carry
// its RateLimit headers.
upscales.use("/v1/upscales/:id", apiKeyAuth({ scope: "upscale" }), rateLimit());
upscales.openapi(readUpscale, async (c) => {
  const { id } = c.req.valid("param");
  const job = await getJob(c.env.DB, id);
  // Another key's job is as unknown as a missing one.
  if (!job || job.keyId !== c.get("apiKey").id) throw new ProblemError({ status: 404, code: "job_not_found", title: "No such upscale" });
  const dispatcher = dispatcherOf(c.env, configOf(c.env), job);
  const current = dispatcher ? await advance({ env: c.env, dispatcher, defer: (work) => c.executionCtx.waitUntil(work) }, job) : job;
  if (!isDone(current)) c.header("retry-after", "1");
  return c.json(await toResource(current, new URL(c.req.url).origin, configOf(c.env)), 200);
});
