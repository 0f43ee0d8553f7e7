import { SELF, env } from "cloudflare:test";
import { Hono } from "hono";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { AppEnv } from "../../worker/src/env";
import { deadline } from "../../worker/src/http/deadline";
import { onError } from "../../worker/src/http/problem";
import { getJob } from "../../worker/src/storage/jobs";
import { cdnKey, cdnUrl, get, ORIGIN } from "./cdn";
import { BASE, newKey, upscale, withKey } from "./helpers";
import { png } from "./images";

afterEach(() => {
  vi.restoreAllMocks();
});

describe("request ids", () => {
  it("gives every answer an id of ours", async () => {
    const response = await SELF.fetch(`${BASE}/healthz`);
    expect(response.headers.get("x-request-id")).toMatch(/^req_[a-z2-7]{20}$/);
  });

  it("ignores an id sent by the client", async () => {
    const response = await SELF.fetch(`${BASE}/healthz`, { headers: { "x-request-id": "forged" } });
    expect(response.headers.get("x-request-id")).not.toBe("forged");
  });

  it("is on error answers too", async () => {
    const response = await SELF.fetch(`${BASE}/v1/usage`);
    expect(response.status).toBe(401);
    expect(response.headers.get("x-request-id")).toMatch(/^req_/);
  });

  it("of the request that creates a job goes to its runner with the job, and with every call about it", async () => {
    const { secret } = await newKey();
    const response = await upscale(secret, await png(20, 20));
    const { id } = await response.json<{ id: string }>();
    const calls = await runnerRequestIds(id);
    expect(calls.length).toBeGreaterThanOrEqual(3); // the submit, a poll, an output download
    expect(new Set(calls)).toEqual(new Set([response.headers.get("x-request-id")]));
  });

  it("of the request that created a job is the one its runner sees from later requests' polls", async () => {
    const { secret } = await newKey();
    const response = await upscale(secret, await png(20, 20, { text: { "hvar-test": "slow" } }), { headers: { prefer: "" } });
    const { id } = await response.json<{ id: string }>();
    let poll = await withKey(secret, `/v1/upscales/${id}`);
    for (let i = 0; i < 100 && poll.headers.has("retry-after"); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      poll = await withKey(secret, `/v1/upscales/${id}`);
    }
    expect(await poll.json()).toMatchObject({ status: "succeeded" });
    expect(poll.headers.get("x-request-id")).not.toBe(response.headers.get("x-request-id"));
    expect(new Set(await runnerRequestIds(id))).toEqual(new Set([response.headers.get("x-request-id")]));
  });

  it("of the request that created a job is the one its runner sees from a later request's cancel", async () => {
    const { secret } = await newKey();
    const response = await upscale(secret, await png(20, 20, { text: { "hvar-test": "hang" } }), { headers: { prefer: "" } });
    const { id } = await response.json<{ id: string }>();
    const canceled = await withKey(secret, `/v1/upscales/${id}/cancel`, { method: "POST" });
    expect(await canceled.json()).toMatchObject({ status: "canceled" });
    expect(canceled.headers.get("x-request-id")).not.toBe(response.headers.get("x-request-id"));
    const job = await getJob(env.DB, id);
    expect(await (await fetch(`${job?.runner}/__canceled`)).json()).toContain(id);
    expect(new Set(await runnerRequestIds(id))).toEqual(new Set([response.headers.get("x-request-id")]));
  });
});

/** The X-Request-Id of every call the job's runner got about it (setup/runner-stub.ts). */
async function runnerRequestIds(jobId: string): Promise<string[]> {
  const job = await getJob(env.DB, jobId);
  return (await fetch(`${job?.runner}/__request-ids/${jobId}`)).json();
}

describe("security headers", () => {
  it("lets other sites embed results but not frame the API", async () => {
    const response = await SELF.fetch(`${BASE}/healthz`);
    expect(response.headers.get("cross-origin-resource-policy")).toBe("cross-origin");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    expect(response.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(response.headers.get("cross-origin-embedder-policy")).toBeNull();
  });
});

describe("CORS", () => {
  it("answers a browser's preflight for an upscale", async () => {
    const response = await SELF.fetch(`${BASE}/v1/upscales`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example.com", "access-control-request-method": "POST", "access-control-request-headers": "authorization,idempotency-key" },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    expect(response.headers.get("access-control-allow-headers")).toContain("idempotency-key");
  });

  it("exposes the rate-limit and location headers to scripts", async () => {
    const { secret } = await newKey();
    const response = await upscale(secret, await png(20, 20), { headers: { origin: "https://app.example.com" } });
    expect(response.headers.get("access-control-expose-headers")).toContain("ratelimit-remaining");
  });
});

describe("access logs", () => {
  it("log one JSON line per request, without secrets or query strings", async () => {
    const { secret } = await newKey();
    const log = vi.spyOn(console, "log").mockImplementation(() => undefined);
    await SELF.fetch(`${BASE}/v1/usage?granularity=day`, { headers: { authorization: `Bearer ${secret}` } });
    const lines = log.mock.calls.map((call) => String(call[0]));
    const line = lines.find((l) => l.includes('"path":"/v1/usage"'));
    expect(JSON.parse(line ?? "{}")).toMatchObject({ method: "GET", path: "/v1/usage", status: 200, keyId: expect.stringMatching(/^key_/) });
    expect(lines.join("\n")).not.toContain(secret);
    expect(lines.join("\n")).not.toContain("granularity");
  });

  it("redact a CDN URL's signature, and show a url: source without its query", async () => {
    const issued = await cdnKey();
    const url = await cdnUrl(issued, `${ORIGIN}/private/cat.png?token=origin-secret-token`, { format: "png" });
    const [, , keyId, signature, options, source] = new URL(url).pathname.split("/");
    expect(source).toMatch(/^url:/);
    const logged = [vi.spyOn(console, "log"), vi.spyOn(console, "error"), vi.spyOn(console, "warn")].map((spy) => spy.mockImplementation(() => undefined));
    await get(url);
    const lines = logged.flatMap((spy) => spy.mock.calls.map((call) => String(call[0])));
    const line = lines.find((l) => l.includes('"path":"/cdn/'));
    expect(JSON.parse(line ?? "{}")).toMatchObject({ path: `/cdn/${keyId}/[redacted]/${options}/url:${ORIGIN}/private/cat.png` });
    for (const secret of [signature as string, source as string, "origin-secret-token"]) expect(lines.join("\n")).not.toContain(secret);
  });
});

describe("the request deadline", () => {
  it("answers 504 timeout when a handler does not finish in time", async () => {
    const app = new Hono<AppEnv>().use(deadline({ ms: 1 })).get("/", () => new Promise<Response>(() => undefined));
    app.onError(onError);
    const response = await app.request("/");
    expect(response.status).toBe(504);
    expect(await response.json()).toMatchObject({ code: "timeout" });
  });

  it("refuses a non-positive bound when built", () => {
    expect(() => deadline({ ms: 0 })).toThrow();
  });
});
