import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { html, raw } from "hono/html";
import type { AppEnv } from "../env";
import { upscaleCanceledEventSchema, upscaleFailedEventSchema, upscaleSucceededEventSchema } from "../jobs/notify";

/**
 * The OpenAPI document (generated from the routes' zod schemas) at /openapi.json, and a reference
 * page at /docs rendered on the server from the same document: no script and nothing fetched from
 * elsewhere, so it works offline and under a strict CSP.
 */
export const DOCUMENT_CONFIG = {
  openapi: "3.1.0",
  info: {
    title: "hvar API",
    version: "1.0.0",
    description: "Multi-scale image super-resolution: one model pass gives x1 (cleaned), x2 and x4.",
  },
};

type Document = ReturnType<OpenAPIHono<AppEnv>["getOpenAPI31Document"]>;

function renderReference(doc: Document) {
  const operations = Object.entries(doc.paths ?? {}).flatMap(([path, item]) =>
    (["get", "post", "put", "patch", "delete"] as const).flatMap((method) => {
      const op = item?.[method];
      if (!op) return [];
      const statuses = Object.keys(op.responses ?? {}).join(", ");
      return [
        html`<section>
          <h2><code>${method.toUpperCase()} ${path}</code></h2>
          ${op.summary ? html`<p><strong>${op.summary}</strong></p>` : ""} ${op.description ? html`<p>${op.description}</p>` : ""}
          <p>Tags: ${(op.tags ?? []).join(", ")} · Responses: ${statuses}</p>
        </section>`,
      ];
    }),
  );
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <title>${doc.info.title} reference</title>
        <style>
          body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
          section { border-top: 1px solid #ddd; }
          code { background: #f4f4f4; padding: 0 .25rem; }
        </style>
      </head>
      <body>
        <h1>${doc.info.title} ${doc.info.version}</h1>
        <p>${doc.info.description ?? ""}</p>
        <p>Machine-readable: <a href="/openapi.json">/openapi.json</a>. Errors are <code>application/problem+json</code> with a stable <code>code</code>.</p>
        ${raw(operations.join(""))}
      </body>
    </html>`;
}

export function mountDocs(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent("securitySchemes", "apiKey", { type: "http", scheme: "bearer", description: "An API key: hvar_sk_..." });
  app.openAPIRegistry.registerComponent("securitySchemes", "adminBearer", { type: "http", scheme: "bearer", description: "ADMIN_SECRET" });
  // The events the worker sends to a job's webhook_url, in the document's `webhooks` section, so that
  // clients (packages/client) type them from the same document as the API.
  const signing =
    "Signed like Standard Webhooks: webhook-signature is v1,base64(HMAC-SHA256(base64-decoded whsec_ secret, `<webhook-id>.<webhook-timestamp>.<body>`)). The webhook-id is the same on every retry.";
  const events = [
    ["upscale.succeeded", "An upscale succeeded: its outputs and usage", upscaleSucceededEventSchema],
    ["upscale.failed", "An upscale failed: its error", upscaleFailedEventSchema],
    ["upscale.canceled", "An upscale was canceled (POST /v1/upscales/{id}/cancel): nothing billed", upscaleCanceledEventSchema],
  ] as const;
  for (const [name, summary, schema] of events) {
    app.openAPIRegistry.registerWebhook({
      method: "post",
      path: name,
      summary: `${summary} (webhook_url of POST /v1/upscales)`,
      description: `${signing} The body carries the job as GET /v1/upscales/{id} shows it, so the receiver needs no call back.`,
      request: {
        headers: z.object({ "webhook-id": z.string(), "webhook-timestamp": z.string(), "webhook-signature": z.string() }),
        body: { content: { "application/json": { schema } } },
      },
      responses: { 200: { description: "Any 2xx acknowledges the delivery; anything else is retried with backoff" } },
    });
  }
  app.doc31("/openapi.json", DOCUMENT_CONFIG);
  app.get("/docs", async (c) => {
    c.header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'");
    return c.html(renderReference(app.getOpenAPI31Document(DOCUMENT_CONFIG)));
  });
}
