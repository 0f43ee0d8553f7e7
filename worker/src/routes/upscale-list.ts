import { DomainError } from "@hvar/contract";
import { createRoute, z } from "@hono/zod-openapi";
import { apiKeyAuth } from "../auth/middleware";
import { configOf } from "../config";
import { openApiRouter, problemResponses } from "../http/openapi";
import { resultsCutoff } from "../jobs/retention";
import { rateLimit } from "../meter/middleware";
import { type ListPosition, jobStatusSchema, listJobs } from "../storage/jobs";
import { jobResourceSchema, toResource } from "../jobs/resource";

/**
 * GET /v1/upscales: the calling key's jobs, newest first, a page at a time. The cursor is opaque to
 * clients (base64url of the last job's creation time and id); it only ever reads the caller's own
 * jobs, so a forged one shows nothing new. Jobs appear as stored (status, progress as last polled,
 * signed URLs); GET /v1/upscales/{id} asks the backend for the latest. Deleted jobs are left out.
 */
export const MAX_PAGE = 100;
const DEFAULT_PAGE = 20;
const CURSOR = /^(\d{1,15})\.(j_[a-z2-7]{20})$/;

const encodeCursor = (position: ListPosition) => btoa(`${position.createdAt}.${position.id}`).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function decodeCursor(cursor: string): ListPosition {
  let text = "";
  try {
    text = atob(cursor.replace(/-/g, "+").replace(/_/g, "/"));
  } catch {
    // not base64: refused below
  }
  const match = CURSOR.exec(text);
  if (!match?.[1] || !match[2]) throw new DomainError({ kind: "invalid_input", code: "invalid_cursor", title: "The cursor is not one this API gave", detail: "Pass nextCursor from the previous page as it is." });
  return { createdAt: Number(match[1]), id: match[2] };
}

export const upscaleListSchema = z
  .object({
    data: z.array(jobResourceSchema).openapi({ description: "Newest first" }),
    nextCursor: z.string().nullable().openapi({ description: "Pass as `cursor` for the next page; null on the last page" }),
  })
  .openapi("UpscaleList");

export const listUpscales = createRoute({
  method: "get",
  path: "/v1/upscales",
  operationId: "listUpscales",
  tags: ["upscales"],
  security: [{ apiKey: [] }],
  summary: "List the key's upscales, newest first, a page at a time",
  description: "Deleted and expired upscales are left out. Items are as last stored; read one upscale for its latest state.",
  middleware: [apiKeyAuth({ scope: "upscale" }), rateLimit()] as const,
  request: {
    query: z.object({
      status: jobStatusSchema.optional().openapi({ description: "Only upscales with this status" }),
      limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(DEFAULT_PAGE).openapi({ description: `Upscales per page, 1 to ${MAX_PAGE}` }),
      cursor: z.string().optional().openapi({ description: "nextCursor of the previous page" }),
    }),
  },
  responses: {
    200: { description: "A page of upscales", content: { "application/json": { schema: upscaleListSchema } } },
    ...problemResponses(400, 401, 403, 429),
  },
});

export const upscaleList = openApiRouter();
upscaleList.openapi(listUpscales, async (c) => {
  const { status, limit, cursor } = c.req.valid("query");
  const config = configOf(c.env);
  const after = cursor === undefined ? null : decodeCursor(cursor);
  const jobs = await listJobs(c.env.DB, c.get("apiKey").id, { status: status ?? null, after, createdAfter: resultsCutoff(config), limit: limit + 1 });
  const page = jobs.slice(0, limit);
  const last = page.at(-1);
  const origin = new URL(c.req.url).origin;
  return c.json(
    {
      data: await Promise.all(page.map((job) => toResource(job, origin, config))),
      nextCursor: jobs.length > limit && last ? encodeCursor(last) : null,
    },
    200,
  );
});
