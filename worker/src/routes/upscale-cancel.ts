import { DomainError } from "@hvar/contract";
import { createRoute } from "@hono/zod-openapi";
import { apiKeyAuth } from "../auth/middleware";
import { configOf } from "../config";
import { dispatcherOf } from "../dispatch";
import { openApiRouter, problemResponses } from "../http/openapi";
import { cancelUpscale } from "../jobs/cancel";
import { rateLimit } from "../meter/middleware";
import type { JobRecord } from "../storage/jobs";
import { assertResultsKept, jobIdParams, jobResourceSchema, ownJob, toResource } from "../jobs/resource";

/**
 * POST /v1/upscales/{id}/cancel: stops the job on its runner and refunds it (jobs/cancel.ts).
 * Canceling a canceled job answers it again; a job that ended otherwise cannot be canceled (409).
 */
export const cancelUpscaleRoute = createRoute({
  method: "post",
  path: "/v1/upscales/{id}/cancel",
  operationId: "cancelUpscale",
  tags: ["upscales"],
  security: [{ apiKey: [] }],
  summary: "Cancel an upscale: its work stops on the runner and it is refunded",
  description:
    "A queued or running upscale ends `canceled` and its reserved quota is refunded in full; a webhook says `upscale.canceled`. " +
    "Canceling it again answers the same. An upscale that already succeeded (billed) or failed cannot be canceled: 409 `job_already_succeeded` or `job_already_failed`.",
  middleware: [apiKeyAuth({ scope: "upscale" }), rateLimit()] as const,
  request: { params: jobIdParams },
  responses: {
    200: { description: "The canceled upscale", content: { "application/json": { schema: jobResourceSchema } } },
    ...problemResponses(401, 403, 404, 409, 410, 429),
  },
});

function alreadyEnded(job: JobRecord): DomainError {
  const succeeded = job.status === "succeeded";
  return new DomainError({
    kind: "conflict",
    code: succeeded ? "job_already_succeeded" : "job_already_failed",
    title: succeeded ? "The upscale already succeeded; it cannot be canceled" : "The upscale already failed; it cannot be canceled",
    extensions: { jobId: job.id },
  });
}

export const upscaleCancel = openApiRouter();
upscaleCancel.openapi(cancelUpscaleRoute, async (c) => {
  const { id } = c.req.valid("param");
  const job = await ownJob(c.env.DB, c.get("apiKey").id, id);
  const config = configOf(c.env);
  assertResultsKept(job, config);
  const ended = await cancelUpscale({ env: c.env, dispatcher: dispatcherOf(c.env, config, job), defer: (work) => c.executionCtx.waitUntil(work) }, job);
  if (ended.status !== "canceled") throw alreadyEnded(ended);
  return c.json(await toResource(ended, new URL(c.req.url).origin, config), 200);
});
