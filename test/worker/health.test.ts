import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";

describe("health", () => {
  it("answers liveness without touching storage", async () => {
    const response = await SELF.fetch("https://hvar.test/healthz");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok" });
  });

  it("is ready when its storage, D1 and R2, answers", async () => {
    const response = await SELF.fetch("https://hvar.test/readyz");
    expect(response.status).toBe(200);
    const body = await response.json<{ status: string; checks: Record<string, boolean> }>();
    expect(body.status).toBe("ready");
    expect(body.checks).toEqual({ d1: true, r2: true });
  });
});

describe("unknown routes", () => {
  it("answer 404 as problem+json with a stable code", async () => {
    const response = await SELF.fetch("https://hvar.test/v0/nothing-here");
    expect(response.status).toBe(404);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(await response.json()).toMatchObject({ status: 404, code: "not_found" });
  });
});
