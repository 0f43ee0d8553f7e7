import { DomainError } from "@hvar/contract";
import { createRoute, z } from "@hono/zod-openapi";
import { parseResultKey } from "@hvar/contract";
import type { Context } from "hono";
import { RETAINED_304_HEADERS, etag } from "hono/etag";
import { configOf } from "../config";
import type { AppEnv } from "../env";
import { openApiRouter, problemResponses } from "../http/openapi";
import { resultFiles } from "../jobs/delete";
import { verifyResultUrl } from "../security/result-url";
import { IsolateCache } from "../storage/isolate-cache";
import { filesAt, resultKeyOf } from "../storage/results";

/**
 * Downloads of results through signed URLs: signature and expiry first, then the edge cache, then
 * R2. Results never change once written, so they are cached for a year under a key without the
 * signature (every valid URL of one result shares one cache entry). The ETag is the result's sha256;
 * Hono's etag middleware answers If-None-Match with a 304 that keeps NOT_MODIFIED_HEADERS.
 *
 * A job's results can be deleted (DELETE /v1/upscales/{id}), and edge caches are per data center,
 * so the job's deletion mark is checked before any cache (jobs/delete.ts, resultFiles: read from D1
 * once per job and DELETION_BOUND_MS in an isolate, with whose files the job's are): its URLs stop
 * working at once in the isolate that deleted it and within DELETION_BOUND_MS everywhere. The caches
 * are keyed by the file, which every job sharing it shares.
 */
const CACHE_CONTROL = "public, max-age=31536000, immutable";
const CACHE_ORIGIN = "https://results.hvar.internal";
/**
 * Small results are also kept in the isolate's memory, in front of the edge cache, so that a hot one
 * is served without I/O (a whole body only: a Range request goes to the edge cache). At most
 * HOT_ENTRIES of HOT_MAX_BYTES each, for HOT_TTL_MS: 16 MiB of the isolate's 128.
 */
const HOT_MAX_BYTES = 256 * 1024;
const HOT_ENTRIES = 64;
const HOT_TTL_MS = 60_000;
const hot = new IsolateCache<string, { body: ArrayBuffer; headers: [string, string][] }>({ ttlMs: HOT_TTL_MS, maxEntries: HOT_ENTRIES });

/** The response, with its body read into memory and kept in `hot` when it is a small whole body. */
async function keptHot(key: string, response: Response): Promise<Response> {
  const length = Number(response.headers.get("content-length"));
  if (response.status !== 200 || !(length <= HOT_MAX_BYTES)) return response;
  const body = await response.arrayBuffer();
  hot.set(key, { body, headers: [...response.headers] });
  return new Response(body, response);
}

const NOT_MODIFIED_HEADERS = [...RETAINED_304_HEADERS, "accept-ranges", "access-control-allow-origin", "cross-origin-resource-policy", "x-hvar-cache"];

const route = createRoute({
  method: "get",
  path: "/v1/results/{job}/{file}",
  operationId: "getResult",
  summary: "Download a result through the signed URL a job answered with",
  description: "No API key: the URL's signature is the credential (`exp`, `kid`, `sig`; see the resultSignature scheme). Results never change, so they are cached for a year; `Range` and `If-None-Match` are honoured.",
  tags: ["results"],
  security: [{ resultSignature: [] }],
  request: {
    params: z.object({
      job: z.string().openapi({ param: { name: "job", in: "path" }, example: "j_abcdefghijklmnopqrst" }),
      file: z.string().openapi({ param: { name: "file", in: "path" }, example: "x2.png" }),
    }),
    query: z.object({
      exp: z.string().optional().openapi({ description: "Expiry, unix seconds", example: "1798761600" }),
      kid: z.string().optional().openapi({ description: "The signing key's id", example: "k1" }),
      sig: z.string().optional().openapi({ description: "base64url HMAC-SHA256 of the path, exp and kid", example: "3q2-7wXl0cQ8m1xZb4rT9yVhN6jK2pLs5dF0gAeUiOw" }),
    }),
  },
  responses: {
    200: { description: "The image (Range supported)", content: { "image/*": { schema: z.string().openapi({ format: "binary" }) } } },
    206: { description: "Part of the image" },
    304: { description: "Not modified (If-None-Match)" },
    ...problemResponses(403, 404, 410),
  },
});

function headersOf(object: R2Object): Headers {
  const headers = new Headers();
  object.writeHttpMetadata(headers);
  headers.set("etag", `"${object.customMetadata?.sha256 ?? object.etag}"`);
  headers.set("cache-control", CACHE_CONTROL);
  headers.set("accept-ranges", "bytes");
  // Results are meant to be embedded on other sites (<img>, canvas).
  headers.set("access-control-allow-origin", "*");
  headers.set("cross-origin-resource-policy", "cross-origin");
  return headers;
}

const notFound = () => new DomainError({ kind: "not_found", code: "result_not_found", title: "No such result" });

async function fromR2(c: Context<AppEnv>, key: string): Promise<Response> {
  const object = await c.env.RESULTS.get(key, { range: c.req.raw.headers });
  if (!object) throw notFound();
  const headers = headersOf(object);
  const range = object.range;
  if (range && c.req.header("range")) {
    const offset = "offset" in range && range.offset !== undefined ? range.offset : "suffix" in range ? object.size - range.suffix : 0;
    const length = "length" in range && range.length !== undefined ? range.length : object.size - offset;
    headers.set("content-range", `bytes ${offset}-${offset + length - 1}/${object.size}`);
    headers.set("content-length", String(length));
    return new Response(object.body, { status: 206, headers });
  }
  headers.set("content-length", String(object.size));
  return new Response(object.body, { status: 200, headers });
}

export const results = openApiRouter();
results.use("/v1/results/*", etag({ retainedHeaders: NOT_MODIFIED_HEADERS }));
results.openapi(route, async (c) => {
  const url = new URL(c.req.url);
  const path = resultKeyOf(url.pathname);
  const jobId = path && parseResultKey(path)?.jobId;
  if (!path || !jobId) throw notFound();
  await verifyResultUrl(url, configOf(c.env).RESULT_SIGNING_KEYS);
  const files = await resultFiles(c.env.DB, jobId);
  if (files.deleted) {
    throw new DomainError({ kind: "gone", code: "result_deleted", title: "This result was deleted", detail: "Its upscale was deleted with DELETE /v1/upscales/{id}." });
  }
  // The file itself: the job's own, or the one a cache hit shares (jobs/result-cache.ts).
  const key = filesAt(path, files.filesOf);

  const whole = c.req.header("range") === undefined;
  const inMemory = whole ? hot.get(key) : undefined;
  if (inMemory) {
    const response = new Response(inMemory.body, { headers: inMemory.headers });
    response.headers.set("x-hvar-cache", "hit");
    return response;
  }
  const cache = caches.default;
  const cacheKey = new Request(`${CACHE_ORIGIN}/${key}`, { headers: c.req.raw.headers });
  const cached = await cache.match(cacheKey);
  if (cached) {
    const response = new Response(cached.body, cached);
    response.headers.set("x-hvar-cache", "hit");
    return whole ? keptHot(key, response) : response;
  }
  const response = await fromR2(c, key);
  if (whole && Number(response.headers.get("content-length")) <= HOT_MAX_BYTES) {
    const kept = await keptHot(key, response);
    if (kept.status === 200) c.executionCtx.waitUntil(cache.put(`${CACHE_ORIGIN}/${key}`, kept.clone()));
    kept.headers.set("x-hvar-cache", "miss");
    return kept;
  }
  if (response.status === 200 && response.body) {
    const [forClient, forCache] = response.body.tee();
    c.executionCtx.waitUntil(cache.put(`${CACHE_ORIGIN}/${key}`, new Response(forCache, response)));
    const answer = new Response(forClient, response);
    answer.headers.set("x-hvar-cache", "miss");
    return answer;
  }
  response.headers.set("x-hvar-cache", "miss");
  return response;
});
