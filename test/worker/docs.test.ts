import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { REFERENCE_SCRIPT } from "../../worker/src/routes/docs";
import { BASE } from "./helpers";

/** The OpenAPI document and the reference page (worker/src/routes/docs.ts). */
describe("the API description", () => {
  it("serves an OpenAPI 3.1 document of every public route, for the deployment that serves it", async () => {
    const response = await SELF.fetch(`${BASE}/openapi.json`);
    expect(response.status).toBe(200);
    const doc = await response.json<{ openapi: string; servers: { url: string }[]; paths: Record<string, Record<string, unknown>> }>();
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.servers).toEqual([expect.objectContaining({ url: "/" })]);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/v1/upscales", "/v1/upscales/{id}", "/v1/results/{job}/{file}", "/v1/usage", "/admin/keys", "/admin/keys/{id}/rotate"]),
    );
    expect(doc.paths["/v1/upscales"]).toHaveProperty("post");
  });
});

describe("the reference page", () => {
  it("is Scalar's renderer over /openapi.json, its script from this origin under a CSP nonce", async () => {
    const response = await SELF.fetch(`${BASE}/docs`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/html");
    const csp = response.headers.get("content-security-policy") ?? "";
    const nonce = /'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toBeTruthy();
    const html = await response.text();
    expect(html).toContain(`<script src="${REFERENCE_SCRIPT}" nonce="${nonce}"></script>`);
    expect(html).toContain('"url": "/openapi.json"');
    expect(html).toContain("Scalar.createApiReference(");
  });

  it("names no other origin: not in the page, not in its CSP", async () => {
    const response = await SELF.fetch(`${BASE}/docs`);
    const csp = response.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toMatch(/https?:|\*/);
    expect(await response.text()).not.toMatch(/(?:src|href)="https?:/);
  });

  it("draws a fresh nonce for every answer", async () => {
    const nonces = await Promise.all(
      [1, 2].map(async () => {
        const response = await SELF.fetch(`${BASE}/docs`);
        await response.body?.cancel();
        return /'nonce-([^']+)'/.exec(response.headers.get("content-security-policy") ?? "")?.[1];
      }),
    );
    expect(nonces[0]).not.toBe(nonces[1]);
  });

  it("serves the renderer's script itself, from the assets (scripts/reference-assets.mjs puts it there)", async () => {
    const response = await SELF.fetch(`${BASE}${REFERENCE_SCRIPT}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/javascript/);
    expect(response.headers.get("cache-control")).toBe("public, max-age=3600");
    expect(await response.text()).toContain("createApiReference");
  });
});
