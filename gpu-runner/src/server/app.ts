import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { requestId, type RequestIdVariables } from "hono/request-id";
import { DomainError, MODEL_PATH, PROBLEM_CONTENT_TYPE, type RunnerModel, jobIdSchema, jobQuerySchema, toProblem } from "@hvar/contract";
import type { Logger } from "pino";
import { z } from "zod";
import type { Discovery } from "../model/manifest";
import { hmacAuth } from "./auth";
import type { JobService } from "./jobs";

export interface AppDeps {
  discovery: Discovery;
  /** Absent when no model could be loaded: job routes then answer 503 `no_model`. */
  jobs?: JobService;
  /** RUNNER_HMAC_SECRET; every `/v1/` route requires a signature made with it. */
  secret: string;
  log: Logger;
  maxBodyBytes: number;
  /** True once shutdown began: readiness fails and new jobs are refused, jobs in flight finish. */
  draining?: () => boolean;
  now?: () => number;
}

type Env = { Variables: RequestIdVariables & { log: Logger } };

/** The runner's HTTP API (API.md). Metrics are served apart, on their own port (metricsApp). */
export function createApp(deps: AppDeps) {
  const { discovery, jobs, log } = deps;
  const draining = deps.draining ?? (() => false);
  const app = new Hono<Env>();

  // The worker sends the X-Request-Id of the request that created a job with every call about that
  // job (the submit, polls, cancels, output downloads); reusing it here, for the request line and for the
  // job's own lines (JobService logs with this request's logger), logs the job under one id in both
  // services. A call without one (a person with curl) gets an id of its own.
  app.use(requestId({ headerName: "X-Request-Id" }));
  app.use(async function requestLog(c, next) {
    const started = performance.now();
    const child = log.child({ requestId: c.get("requestId") });
    c.set("log", child);
    await next();
    child.info({ method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) }, "request");
  });

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", (c) => {
    const models = discovery.models.map((m) => ({ id: m.manifest.id, version: m.manifest.version }));
    if (draining()) return c.json({ status: "draining", models }, 503);
    const ready = jobs !== undefined;
    return c.json({ status: ready ? "ready" : "no_model", models, rejected: discovery.rejected }, ready ? 200 : 503);
  });

  app.use(
    "/v1/*",
    bodyLimit({
      maxSize: deps.maxBodyBytes,
      onError: () => {
        throw new DomainError({ kind: "too_large", code: "payload_too_large", title: `The body is larger than ${deps.maxBodyBytes} bytes.` });
      },
    }),
  );
  app.use("/v1/*", hmacAuth({ secret: deps.secret, ...(deps.now ? { now: deps.now } : {}) }));

  // The contract's MODEL_PATH: the model served and what it accepts, which the worker enforces at the edge.
  app.get(MODEL_PATH, (c) => {
    const service = requireJobs(jobs);
    const { id, version } = service.manifest;
    return c.json({ model: { id, version }, limits: { ...service.limits, maxBodyBytes: deps.maxBodyBytes } } satisfies RunnerModel);
  });

  app.post("/v1/jobs", async (c) => {
    const service = requireJobs(jobs);
    const query = parse(jobQuerySchema, c.req.query());
    if (draining()) throw new DomainError({ kind: "unavailable", code: "runner_draining", title: "The runner is shutting down; send the job to another runner." });
    const body = new Uint8Array(await c.req.arrayBuffer());
    const { job, created } = await service.create(query, body, c.get("log"));
    return c.json(job, created ? 202 : 200);
  });

  app.get("/v1/jobs/:id", async (c) => {
    const job = await requireJobs(jobs).get(parse(jobIdSchema, c.req.param("id")));
    if (!job) throw new DomainError({ kind: "not_found", code: "job_not_found", title: "No job with this id." });
    return c.json(job);
  });

  // The contract's cancelJobPath. Answers how the job ended (a canceled job is `failed` with JOB_CANCELED), 200 in every case.
  app.post("/v1/jobs/:id/cancel", async (c) => {
    const job = await requireJobs(jobs).cancel(parse(jobIdSchema, c.req.param("id")));
    return c.json(job);
  });

  app.get("/v1/jobs/:id/outputs/:scale", async (c) => {
    const service = requireJobs(jobs);
    const job = await service.get(parse(jobIdSchema, c.req.param("id")));
    if (!job) throw new DomainError({ kind: "not_found", code: "job_not_found", title: "No job with this id." });
    const output = job.outputs?.find((o) => String(o.scale) === c.req.param("scale"));
    if (!output) throw new DomainError({ kind: "not_found", code: "output_not_found", title: "The job has no output at this scale (yet)." });
    const object = await service.output(output.key);
    if (!object) throw new DomainError({ kind: "not_found", code: "output_not_found", title: "The output is missing from storage." });
    return c.body(new Uint8Array(object.bytes), 200, { "Content-Type": output.contentType, "Content-Length": String(object.bytes.length), ETag: `"${output.sha256}"` });
  });

  app.notFound(() => problemResponse(new DomainError({ kind: "not_found", code: "not_found", title: "No such route." })));
  app.onError((error, c) => {
    if (error instanceof DomainError) return problemResponse(error);
    if (error instanceof HTTPException && error.status < 500) return problemResponse(new DomainError({ kind: "invalid_input", code: "invalid_request", title: error.message || "Bad request." }));
    (c.get("log") ?? log).error({ err: error }, "unhandled error");
    return problemResponse(new DomainError({ kind: "internal", code: "internal", title: "Internal runner error." }));
  });
  return app;
}

function requireJobs(jobs: JobService | undefined): JobService {
  if (!jobs) throw new DomainError({ kind: "unavailable", code: "no_model", title: "The runner has no model loaded." });
  return jobs;
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new DomainError({ kind: "invalid_input", code: "invalid_request", title: z.prettifyError(result.error).replaceAll("\n", " ") });
  return result.data;
}

/** The runner's edge for errors: packages/contract's mapping from an error's kind to its status, as the worker's. */
function problemResponse(error: DomainError): Response {
  const { status, headers, body } = toProblem(error);
  return new Response(JSON.stringify(body), { status, headers: { ...headers, "Content-Type": PROBLEM_CONTENT_TYPE } });
}
