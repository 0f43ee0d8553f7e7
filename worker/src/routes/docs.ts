import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import { NONCE, secureHeaders } from "hono/secure-headers";
import type { AppEnv } from "../env";
import { DomainError } from "@hvar/contract";
import { upscaleCanceledEventSchema, upscaleFailedEventSchema, upscaleSucceededEventSchema } from "../jobs/notify";

/**
 * The OpenAPI document (generated from the routes' zod schemas) at /openapi.json, and the reference
 * page at /docs: Scalar's renderer (parameters, schemas, examples, a request client) over the same
 * document. Its script is served by this worker (REFERENCE_SCRIPT), never fetched from a CDN, so the
 * page works offline and under a CSP that names no other origin.
 */
export const DOCUMENT_CONFIG = {
  openapi: "3.1.0",
  info: {
    title: "hvar API",
    version: "1.0.0",
    description: [
      "Multi-scale image super-resolution: one model pass gives x1 (cleaned), x2 and x4.",
      "",
      "Errors are `application/problem+json` with a stable `code`. API calls take an API key as a bearer token;",
      "result URLs and CDN URLs carry their own signatures and need no key. Guides: docs/api.md and docs/cdn-urls.md in the repository.",
    ].join("\n"),
  },
  // Relative: the deployment that serves this document, whatever its origin (a local port, production).
  servers: [{ url: "/", description: "The deployment that serves this document" }],
  tags: [
    { name: "upscales", description: "Upscale jobs: submit, wait or poll, read" },
    { name: "results", description: "Downloads of results through the signed URLs that jobs answer with" },
    { name: "cdn", description: "CDN URLs: upscaled images straight in <img src>" },
    { name: "model", description: "The model this deployment serves, and what it accepts" },
    { name: "usage", description: "What a key has used, from the ledger" },
    { name: "admin", description: "Key management, for operators (ADMIN_SECRET)" },
    { name: "backends", description: "Callbacks from dispatch backends" },
    { name: "health", description: "Liveness and readiness of the edge" },
  ],
};

/**
 * The renderer's script (@scalar/api-reference's standalone bundle), copied into worker/public/docs
 * when packages are installed (scripts/reference-assets.mjs, the root package's postinstall) and
 * served from the ASSETS binding.
 */
export const REFERENCE_SCRIPT = "/docs/scalar.js";

/** The page's CSP: the bundle and one inline script (by nonce) from this origin; try-it calls this API only. */
const referenceHeaders = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'", NONCE],
    // The renderer injects <style> elements and style attributes as it draws.
    styleSrc: ["'self'", "'unsafe-inline'"],
    imgSrc: ["'self'", "data:", "blob:"],
    fontSrc: ["'self'", "data:"],
    connectSrc: ["'self'"],
    baseUri: ["'none'"],
    formAction: ["'none'"],
    frameAncestors: ["'none'"],
  },
  crossOriginEmbedderPolicy: false,
  referrerPolicy: "no-referrer",
});

const renderReference = Scalar<AppEnv>((c) => ({
  url: "/openapi.json",
  pageTitle: "hvar API reference",
  cdn: REFERENCE_SCRIPT,
  nonce: c.get("secureHeadersNonce"),
  // Nothing leaves this origin: system fonts, no telemetry, none of Scalar's hosted tools offered.
  withDefaultFonts: false,
  telemetry: false,
  agent: { disabled: true },
  mcp: { disabled: true },
  showDeveloperTools: "never",
  // None: the browser would otherwise ask for /favicon.ico.
  favicon: "data:,",
  defaultOpenAllTags: true,
  documentDownloadType: "json",
}));

/** The bundle changes only with the package; a short cache keeps /docs fresh after a deployment. */
const SCRIPT_CACHE_CONTROL = "public, max-age=3600";

export function mountDocs(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent("securitySchemes", "apiKey", { type: "http", scheme: "bearer", description: "An API key: hvar_sk_..." });
  app.openAPIRegistry.registerComponent("securitySchemes", "adminBearer", { type: "http", scheme: "bearer", description: "ADMIN_SECRET" });
  app.openAPIRegistry.registerComponent("securitySchemes", "resultSignature", {
    type: "apiKey",
    in: "query",
    name: "sig",
    description:
      "Result URLs are signed by the worker and need no API key: `sig` is base64url HMAC-SHA256 over the path, `exp` (unix seconds) and `kid` (the signing key's id), all three in the query as the job's `outputs[].url` gives them. Expired or altered URLs get 403.",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "replicateSignature", {
    type: "apiKey",
    in: "header",
    name: "webhook-signature",
    description: "Replicate signs its callbacks (Standard Webhooks, REPLICATE_WEBHOOK_SECRET) with webhook-id, webhook-timestamp and webhook-signature.",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "webhookSignature", {
    type: "apiKey",
    in: "header",
    name: "webhook-signature",
    description:
      "Events to a job's webhook_url are signed like Standard Webhooks with the key's whsec_ secret: webhook-signature is v1,base64(HMAC-SHA256(base64-decoded secret, `<webhook-id>.<webhook-timestamp>.<body>`)). Verify with `verifyWebhook` from @hvar/client/webhooks.",
  });
  // The events the worker sends to a job's webhook_url, in the document's `webhooks` section, so that
  // clients (packages/client) type them from the same document as the API.
  const signing =
    "Signed like Standard Webhooks: webhook-signature is v1,base64(HMAC-SHA256(base64-decoded whsec_ secret, `<webhook-id>.<webhook-timestamp>.<body>`)). The webhook-id is the same on every retry.";
  const events = [
    ["upscale.succeeded", "upscaleSucceeded", "An upscale succeeded: its outputs and usage", upscaleSucceededEventSchema],
    ["upscale.failed", "upscaleFailed", "An upscale failed: its error", upscaleFailedEventSchema],
    ["upscale.canceled", "upscaleCanceled", "An upscale was canceled (POST /v1/upscales/{id}/cancel): nothing billed", upscaleCanceledEventSchema],
  ] as const;
  for (const [name, operationId, summary, schema] of events) {
    app.openAPIRegistry.registerWebhook({
      method: "post",
      path: name,
      operationId,
      summary: `${summary} (webhook_url of POST /v1/upscales)`,
      description: `${signing} The body carries the job as GET /v1/upscales/{id} shows it, so the receiver needs no call back.`,
      security: [{ webhookSignature: [] }],
      request: {
        headers: z.object({ "webhook-id": z.string(), "webhook-timestamp": z.string(), "webhook-signature": z.string() }),
        body: { content: { "application/json": { schema } } },
      },
      responses: { 200: { description: "Any 2xx acknowledges the delivery; anything else is retried with backoff" } },
    });
  }
  app.doc31("/openapi.json", DOCUMENT_CONFIG);
  app.get("/docs", referenceHeaders, renderReference);
  app.get(REFERENCE_SCRIPT, async (c) => {
    const asset = await c.env.ASSETS.fetch(c.req.raw);
    if (!asset.ok && asset.status !== 304) {
      await asset.body?.cancel();
      throw new DomainError({ kind: "not_found", code: "not_found", title: "No such file", detail: "The reference's script is missing: run npm ci (its postinstall copies it)." });
    }
    const response = new Response(asset.body, asset);
    response.headers.set("cache-control", SCRIPT_CACHE_CONTROL);
    return response;
  });
}
