import { DomainError } from "@hvar/contract";
import { createRoute, z } from "@hono/zod-openapi";
import { DEFAULT_QUALITY, MAX_QUALITY, MIN_QUALITY, SCALES } from "@hvar/contract";
import { etag } from "hono/etag";
import { apiKeyAuth } from "../auth/middleware";
import { authorizeCdnRequest } from "../cdn/authorize";
import { purgeSource } from "../cdn/cache";
import { CdnGrammarError, normalizeSourceUrl, parseCdnPath } from "../cdn/grammar";
import { NOT_MODIFIED_HEADERS, cdnError } from "../cdn/respond";
import { serveCdnImage } from "../cdn/serve";
import { configOf } from "../config";
import { openApiRouter, problemResponses } from "../http/openapi";
import { rateLimit } from "../meter/middleware";
import { isListed } from "../security/source-policy";

/**
 * CDN transformation URLs, `GET /cdn/<key id>/<signature>/<options>/<source>` (cdn/grammar.ts), and
 * `POST /v1/cdn/purge`. The order of work: everything that can refuse a request for free and
 * without touching the source (grammar, then cdn/authorize.ts: key, signature, expiry, source
 * policy), then the edge cache, then R2, and only on a miss the source fetch, quota and a runner
 * (cdn/serve.ts, cdn/generate.ts).
 */
const imageRoute = createRoute({
  method: "get",
  path: "/cdn/{keyId}/{signature}/{options}/{source}",
  operationId: "getCdnImage",
  tags: ["cdn"],
  // No API key: the URL is its own credential, signed in the path (`signature`), which no OpenAPI
  // security scheme can name; the description says how.
  security: [],
  summary: "An upscaled image for <img src>: options and source in the path, signed per API key",
  description: [
    `\`options\`: comma-separated \`name=value\`: \`scale=${SCALES.join("|")}\` (default 2), \`denoise\` (the cleaned x1 alone, = \`scale=1\`),`,
    `\`format=auto|avif|webp|png|jpeg\` (\`auto\`, the default, picks from Accept and answers \`Vary: Accept\`), \`quality=${MIN_QUALITY}..${MAX_QUALITY}\` (default ${DEFAULT_QUALITY}),`,
    "`width`, `height` (a final fit after super-resolution, up to 8192), `fit=scale-down|contain|cover|crop|pad` (default scale-down),",
    "`dpr=1..4` (multiplies width and height), `expires=<unix seconds>`, `onerror=redirect` (302 to the original on failure).",
    "Aliases `w`, `h`, `q`, `f`. Unknown or repeated options are 400. `source`: a path under the key's first CDN origin (one or more",
    "segments, with the query string), or `url:<base64url of the absolute URL>` for any of its origins. `signature`: base64url",
    "HMAC-SHA256 with the key's CDN secret over `hvar-cdn-v1\\n<key id>\\n<normalized options>\\n<normalized source URL>`, or `unsigned`",
    "for keys with `cdnAllowUnsigned`. No API key is sent: the signature in the path is the credential. Build URLs with `buildCdnUrl` (@hvar/client/cdn). Errors carry `X-Hvar-Cdn: err=<code>`.",
    "The model runs once per source, scale and model version, billed like an upscale job; every width, fit, format and quality of that scale is derived from its result without a bill. Cache hits are free and counted in usage.",
  ].join(" "),
  request: {
    params: z.object({
      keyId: z.string().openapi({ param: { name: "keyId", in: "path" }, example: "key_abcdefghijklmnopqrst" }),
      signature: z.string().openapi({ param: { name: "signature", in: "path" }, description: "43 characters of base64url, or `unsigned`" }),
      options: z.string().openapi({ param: { name: "options", in: "path" }, example: "scale=4,format=auto,width=1200" }),
      source: z.string().openapi({ param: { name: "source", in: "path" }, example: "images/cat.jpg" }),
    }),
  },
  responses: {
    200: { description: "The image (strong ETag; `X-Hvar-Cache: hit|miss`)", content: { "image/*": { schema: z.string().openapi({ format: "binary" }) } } },
    302: { description: "`onerror=redirect`: the original image, after a failure" },
    304: { description: "Not modified (If-None-Match)" },
    ...problemResponses(400, 403, 404, 413, 415, 422, 429, 502, 503, 504),
  },
});

const purgeRoute = createRoute({
  method: "post",
  path: "/v1/cdn/purge",
  operationId: "purgeCdnSource",
  tags: ["cdn"],
  security: [{ apiKey: [] }],
  summary: "Forget every CDN variant of one source",
  description: "All sizes, formats and scales of the source are generated again from the origin on their next request (billed then).",
  request: {
    body: {
      required: true,
      content: {
        "application/json": {
          schema: z.object({ source: z.url({ protocol: /^https?$/ }) }).openapi("CdnPurge", { example: { source: "https://photos.example.com/cats/tom.jpg" } }),
        },
      },
    },
  },
  responses: {
    200: {
      description: "Purged",
      content: {
        "application/json": {
          schema: z
            .object({ source: z.string(), generation: z.number().int(), deletedObjects: z.number().int() })
            .openapi("CdnPurgeResult", { example: { source: "https://photos.example.com/cats/tom.jpg", generation: 2, deletedObjects: 3 } }),
        },
      },
    },
    ...problemResponses(400, 401, 403, 429),
  },
});

export const cdn = openApiRouter();

cdn.openAPIRegistry.registerPath(imageRoute);
// Images carry strong ETags (their sha256); Hono answers If-None-Match with a 304.
cdn.use("/cdn/*", etag({ retainedHeaders: NOT_MODIFIED_HEADERS }));
// The path has a variable number of segments, so it is parsed by the grammar rather than by the router.
cdn.get("/cdn/*", async (c) => {
  let redirectTo: string | null = null;
  try {
    const config = configOf(c.env);
    const url = new URL(c.req.url);
    const now = Date.now();
    const request = parseCdnPath(url.pathname, url.search);
    const authorized = await authorizeCdnRequest(c.env.DB, request, config.ALLOW_INSECURE_ORIGINS, now);
    // Only now: a redirect before the checks would make the worker an open redirector.
    if (request.options.onerror === "redirect") redirectTo = authorized.source.href;
    const context = {
      env: c.env,
      config,
      accept: c.req.header("accept"),
      origin: url.origin,
      requestId: c.get("requestId"),
      defer: (work: Promise<unknown>) => c.executionCtx.waitUntil(work),
    };
    return await serveCdnImage(context, request, authorized, now);
  } catch (error) {
    return cdnError(c, error, redirectTo);
  }
});

cdn.use("/v1/cdn/purge", apiKeyAuth({ scope: "cdn" }), rateLimit());
cdn.openapi(purgeRoute, async (c) => {
  const key = c.get("apiKey");
  let source: string;
  try {
    source = normalizeSourceUrl(c.req.valid("json").source);
  } catch (error) {
    if (!(error instanceof CdnGrammarError)) throw error;
    throw new DomainError({ kind: "invalid_input", code: error.code, title: "The source URL is invalid", detail: error.message });
  }
  if (!isListed(new URL(source), key.cdnOrigins)) {
    throw new DomainError({ kind: "forbidden", code: "source_not_allowed", title: "The source is not under one of this key's CDN origins" });
  }
  const { generation, deleted } = await purgeSource(c.env.DB, c.env.RESULTS, source);
  return c.json({ source, generation, deletedObjects: deleted }, 200);
});
