import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { DEMO_CSP } from "../../worker/src/routes/demo";
import { BASE } from "./helpers";

describe("the demo page", () => {
  it("is where / leads", async () => {
    const response = await SELF.fetch(`${BASE}/`, { redirect: "manual" });
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe("/demo/");
  });

  it("is served from the assets with its own CSP: scripts, styles and API calls on this origin only", async () => {
    const response = await SELF.fetch(`${BASE}/demo/`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/html/);
    expect(response.headers.get("content-security-policy")).toBe(DEMO_CSP);
    expect(DEMO_CSP).toContain("script-src 'self'");
    expect(DEMO_CSP).toContain("connect-src 'self'");
    expect(DEMO_CSP).not.toContain("unsafe-inline");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await response.text();
    expect(html).toContain('<script type="module" src="demo.js"></script>');
    // The page is static and public: no key or secret is ever part of it.
    expect(html).not.toMatch(/hvar_sk_[A-Za-z0-9_-]{8}/);
  });

  it("serves its script, stylesheet, example photos and their licenses", async () => {
    for (const [path, type] of [
      ["/demo/demo.js", /javascript/],
      ["/demo/demo.css", /^text\/css/],
      ["/demo/examples/chelsea.jpg", /^image\/jpeg/],
      ["/demo/examples/LICENSE.txt", /^text\/plain/],
    ] as const) {
      const response = await SELF.fetch(`${BASE}${path}`);
      expect(response.status, path).toBe(200);
      expect(response.headers.get("content-type"), path).toMatch(type);
      await response.body?.cancel();
    }
  });

  it("answers a missing file with a problem", async () => {
    const response = await SELF.fetch(`${BASE}/demo/nope.js`);
    expect(response.status).toBe(404);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
  });

  it("leaves /docs its own CSP, and the API the strict default", async () => {
    const docs = await SELF.fetch(`${BASE}/docs`);
    expect(docs.headers.get("content-security-policy")).not.toBe(DEMO_CSP);
    expect(docs.headers.get("content-security-policy")).toContain("script-src 'self' 'nonce-");
    await docs.body?.cancel();
    const api = await SELF.fetch(`${BASE}/healthz`);
    expect(api.headers.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'");
  });
});
