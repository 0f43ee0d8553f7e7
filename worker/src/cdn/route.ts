import { createRoute, z } from "@hono/zod-openapi";
import { DEFAULT_QUALITY, MAX_QUALITY, MIN_QUALITY, SCALES } from "@hvar/contract";
import type { Context } from "hono";
import { type ApiKey, findCdnKey } from "../auth/keys";
import { apiKeyAuth } from "../auth/middleware";
import { configOf } from "../config";
import { bytesOf, randomId, timingSafeEqual } from "../crypto";
import { megapixels } from "../dispatch/lifecycle";
import type { AppEnv } from "../env";
import { openApiRouter, problemResponses } from "../http/openapi";
import { ProblemError } from "../http/problem";
import { recordEvent } from "../meter/ledger";
import { rateLimit } from "../meter/middleware";
import { type Variant, contentTypeOf, edgeMatch, edgePut, generationOf, metadataOf, purgeSource, sourceHashOf, variantOf } from "./cache";
import { generateVariant } from "./generate";
import { CdnGrammarError, type CdnRequest, normalizeSourceUrl, parseCdnPath } from "./grammar";
import { cdnError, deliver, sizesOf, storedResponse } from "./respond";
import { signCdnRequest } from "./signature";
import { type SourcePolicy, checkSource, isListed, resolvePathSource } from "./source-policy";

/**
 * CDN transformation URLs, `GET /cdn/<key id>/<signature>/<options>/<source>` (grammar.ts), and
 * `POST /v1/cdn/purge`. The order of work: everything that can refuse a request for free and
 * without touching the source (grammar, key, signature, expiry, source policy), then the edge
 * cache, then R2, and only on a miss the source fetch, quota and a runner (generate.ts).
 */
const forbidden = (code: string, title: string, detail?: string) =>
  new ProblemError({ status: 403, code, title, ...(detail === undefined ? {} : { detail }) });

/** The key a CDN URL names, usable for CDN URLs. */
async function cdnKeyOf(db: D1Database, keyId: string): Promise<{ key: ApiKey; cdnSecret: string | null }> {
  const found = await findCdnKey(db, keyId);
  if (!found) throw forbidden("unknown_key", "This CDN URL names no API key");
  if (found.key.revokedAt) throw forbidden("revoked_api_key", "This API key was revoked");
  if (!found.key.scopes.includes("cdn")) throw forbidden("insufficient_scope", "This API key lacks a scope", 'CDN URLs need the "cdn" scope.');
  return found;
}

/** Constant-time: how much of a forged signature matches is not observable. */
async function verifyCdnSignature(secret: string, request: CdnRequest, keyId: string, sourceUrl: string, signature: string): Promise<boolean> {
  const expected = await signCdnRequest(secret, keyId, request.options, sourceUrl);
  return timingSafeEqual(bytesOf(signature), bytesOf(expected));
}

/** Signature (or the key's permission for unsigned URLs), then expiry: expiry is not an oracle. */
async function authorize(request: CdnRequest, key: ApiKey, cdnSecret: string | null, sourceUrl: string, now: number): Promise<void> {
  if (request.signature === null) {
    if (!key.cdnAllowUnsigned) throw forbidden("unsigned_not_allowed", "This API key accepts signed CDN URLs only");
  } else if (!cdnSecret || !(await verifyCdnSignature(cdnSecret, request, key.id, sourceUrl, request.signature))) {
    throw forbidden("invalid_signature", "The CDN URL signature is invalid");
  }
  if (request.options.expires !== null && request.options.expires * 1000 <= now) throw forbidden("url_expired", "The CDN URL has expired");
}

/** Hits are free but counted: one ledger row each, written after the answer. */
function countHit(c: Context<AppEnv>, keyId: string, input: [number, number], output: [number, number]): void {
  c.executionCtx.waitUntil(
    recordEvent(c.env.DB, {
      jobId: randomId("hit"),
      keyId,
      inputMp: megapixels(...input),
      outputMp: megapixels(...output),
      runnerMs: 0,
      cacheHit: true,
    }),
  );
}

async function serveVariant(c: Context<AppEnv>, request: CdnRequest, key: ApiKey, source: URL, policy: SourcePolicy, variant: Variant, maxAgeS: number): Promise<Response> {
  const config = configOf(c.env);
  const delivery = { maxAgeS, varyOnAccept: request.options.format === "auto", ifNoneMatch: c.req.header("if-none-match") };

  const cached = await edgeMatch(variant);
  if (cached) {
    const { input, output } = sizesOf(cached);
    countHit(c, key.id, input, output);
    return deliver(cached, { ...delivery, cache: "hit" });
  }

  let object = await c.env.RESULTS.get(variant.r2Key);
  let counted = false;
  if (!object) {
    const origin = new URL(c.req.url).origin;
    ({ counted } = await generateVariant({
      env: c.env,
      config,
      key,
      source,
      policy,
      options: request.options,
      variant,
      origin,
      defer: (work) => c.executionCtx.waitUntil(work),
    }));
    object = await c.env.RESULTS.get(variant.r2Key);
    if (!object) throw new Error(`variant ${variant.r2Key} was not stored`);
  }
  const metadata = metadataOf(object);
  if (!metadata) throw new Error(`variant ${variant.r2Key} has no metadata`);
  if (!counted) countHit(c, key.id, [metadata.inputWidth, metadata.inputHeight], [metadata.width, metadata.height]);

  const [forClient, forEdge] = object.body.tee();
  c.executionCtx.waitUntil(edgePut(variant, storedResponse(forEdge, contentTypeOf(variant.format), metadata, config.CDN_MAX_AGE_S)));
  const stored = storedResponse(forClient, contentTypeOf(variant.format), metadata, config.CDN_MAX_AGE_S);
  return deliver(stored, { ...delivery, cache: counted ? "miss" : "hit" });
}

const imageRoute = createRoute({
  method: "get",
  path: "/cdn/{keyId}/{signature}/{options}/{source}",
  tags: ["cdn"],
  summary: "An upscaled image for <img src>: options and source in the path, signed per API key",
  description: [
    `\`options\`: comma-separated \`name=value\`: \`scale=${SCALES.join("|")}\` (default 2), \`denoise\` (the cleaned x1 alone, = \`scale=1\`),`,
    `\`format=auto|avif|webp|png|jpeg\` (\`auto\`, the default, picks from Accept and answers \`Vary: Accept\`), \`quality=${MIN_QUALITY}..${MAX_QUALITY}\` (default ${DEFAULT_QUALITY}),`,
    "`width`, `height` (a final fit after super-resolution, up to 8192), `fit=scale-down|contain|cover|crop|pad` (default scale-down),",
    "`dpr=1..4` (multiplies width and height), `expires=<unix seconds>`, `onerror=redirect` (302 to the original on failure).",
    "Aliases `w`, `h`, `q`, `f`. Unknown or repeated options are 400. `source`: a path under the key's first CDN origin (one or more",
    "segments, with the query string), or `url:<base64url of the absolute URL>` for any of its origins. `signature`: base64url",
    "HMAC-SHA256 with the key's CDN secret over `hvar-cdn-v1\\n<key id>\\n<normalized options>\\n<normalized source URL>`, or `unsigned`",
    "for keys with `cdnAllowUnsigned`. Build URLs with `buildCdnUrl` (worker/src/cdn/url-builder.ts). Errors carry `X-Hvar-Cdn: err=<code>`.",
    "New images are billed like an upscale job; cache hits are free and counted in usage.",
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
  tags: ["cdn"],
  security: [{ apiKey: [] }],
  summary: "Forget every CDN variant of one source",
  description: "All sizes, formats and scales of the source are generated again from the origin on their next request (billed then).",
  request: {
    body: { required: true, content: { "application/json": { schema: z.object({ source: z.url({ protocol: /^https?$/ }) }).openapi("CdnPurge") } } },
  },
  responses: {
    200: {
      description: "Purged",
      content: {
        "application/json": {
          schema: z.object({ source: z.string(), generation: z.number().int(), deletedObjects: z.number().int() }).openapi("CdnPurgeResult"),
        },
      },
    },
    ...problemResponses(400, 401, 403, 429),
  },
});

export const cdn = openApiRouter();

cdn.openAPIRegistry.registerPath(imageRoute);
// The path has a variable number of segments, so it is parsed by grammar.ts rather than by the router.
cdn.get("/cdn/*", async (c) => {
  let redirectTo: string | null = null;
  try {
    const config = configOf(c.env);
    const url = new URL(c.req.url);
    const now = Date.now();
    const request = parseCdnPath(url.pathname, url.search);
    const { key, cdnSecret } = await cdnKeyOf(c.env.DB, request.keyId);
    const policy: SourcePolicy = { allowed: key.cdnOrigins, insecure: config.ALLOW_INSECURE_ORIGINS };
    const sourceUrl = request.source.kind === "url" ? request.source.url : resolvePathSource(request.source.path, policy);
    await authorize(request, key, cdnSecret, sourceUrl, now);
    const source = checkSource(sourceUrl, policy);
    // Only now: a redirect before the checks would make the worker an open redirector.
    if (request.options.onerror === "redirect") redirectTo = source.href;

    const sourceHash = await sourceHashOf(source.href);
    const generation = await generationOf(c.env.DB, sourceHash);
    const variant = await variantOf({
      sourceUrl: source.href,
      sourceHash,
      generation,
      options: request.options,
      accept: c.req.header("accept"),
      modelVersion: config.MODEL_VERSION,
    });
    const maxAgeS = request.options.expires === null ? config.CDN_MAX_AGE_S : Math.min(config.CDN_MAX_AGE_S, request.options.expires - Math.floor(now / 1000));
    return await serveVariant(c, request, key, source, policy, variant, maxAgeS);
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
    throw new ProblemError({ status: 400, code: error.code, title: "The source URL is invalid", detail: error.message });
  }
  if (!isListed(new URL(source), key.cdnOrigins)) {
    throw forbidden("source_not_allowed", "The source is not under one of this key's CDN origins");
  }
  const { generation, deleted } = await purgeSource(c.env.DB, c.env.RESULTS, source);
  return c.json({ source, generation, deletedObjects: deleted }, 200);
});
