import { DomainError } from "@hvar/contract";
import { createRoute } from "@hono/zod-openapi";
import { apiKeyAuth } from "../auth/middleware";
import { openApiRouter, problemResponses } from "../http/openapi";
import { deleteUpscale } from "../jobs/delete";
import { rateLimit } from "../meter/middleware";
import { jobIdParams, ownJob } from "../jobs/resource";

/** DELETE /v1/upscales/{id}: the results go now (jobs/delete.ts); reads of the job answer 410 afterwards. */
export const deleteUpscaleRoute = createRoute({
  method: "delete",
  path: "/v1/upscales/{id}",
  operationId: "deleteUpscale",
  tags: ["upscales"],
  security: [{ apiKey: [] }],
  summary: "Delete an upscale's results now",
  description:
    "The result images are deleted at once (files that another upscale of the same image and options shares, a cache hit, go with the last of them) and their signed URLs stop working (410). The upscale leaves the list; reading it answers 410 `job_deleted`; " +
    "its usage stays. Deleting it again answers 204 too. An upscale still queued or running cannot be deleted (409 `job_not_finished`): cancel it first.",
  middleware: [apiKeyAuth({ scope: "upscale" }), rateLimit()] as const,
  request: { params: jobIdParams },
  responses: {
    204: { description: "Deleted" },
    ...problemResponses(401, 403, 404, 409, 429),
  },
});

export const upscaleDelete = openApiRouter();
upscaleDelete.openapi(deleteUpscaleRoute, async (c) => {
  const { id } = c.req.valid("param");
  const job = await ownJob(c.env.DB, c.get("apiKey").id, id);
  if (!(await deleteUpscale(c.env, job))) {
    throw new DomainError({ kind: "conflict", code: "job_not_finished", title: "The upscale has not ended", detail: "Cancel it first (POST /v1/upscales/{id}/cancel).", extensions: { jobId: job.id } });
  }
  return c.body(null, 204);
});
