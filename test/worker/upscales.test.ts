import { SELF, env } from "cloudflare:test";
import { DEFAULT_QUALITY, ENCODING_VERSION } from "@hvar/contract";
import { describe, expect, it } from "vitest";
import { BASE, jobCount, ledgerOf, meterOf, newKey, stubOutput, upscale, withKey } from "./helpers";
import { png } from "./images";
import { hashRequest } from "../../worker/src/jobs/start";
import { sha256Hex } from "../../worker/src/security/crypto";
import { getJob } from "../../worker/src/storage/jobs";
import { normalizeUpscaleOptions, parseUpscaleParams } from "../../worker/src/validate/options";

interface Job {
  id: string;
  status: string;
  model: { id: string; version: string } | null;
  outputs?: { scale: number; url: string; width: number; height: number; bytes: number; contentType: string }[];
  usage: { inputMp: number; cacheHit: boolean; billable: boolean };
  options: { temperature: number; cleanup: number | "auto" };
  cleanupApplied?: number;
}

const image = () => png(40, 25);

describe("POST /v1/upscales with Prefer: wait", () => {
  it("answers 200 with one signed URL per requested scale, sizes, usage and model", async () => {
    const { secret } = await newKey();
    const response = await upscale(secret, await image(), { query: "scales=2,4&format=png" });
    expect(response.status).toBe(200);
    expect(response.headers.get("preference-applied")).toBe("wait=10");
    const job = await response.json<Job>();
    expect(job).toMatchObject({
      status: "succeeded",
      model: { id: "hvar-stub", version: "0.0.0-test" },
      input: { width: 40, height: 25, type: "png", megapixels: 0.001 },
      usage: { inputMp: 0.001, cacheHit: false, billable: true },
    });
    expect(job.outputs?.map((o) => [o.scale, o.width, o.height])).toEqual([
      [2, 80, 50],
      [4, 160, 100],
    ]);
    expect(job.outputs?.[0]?.url).toMatch(new RegExp(`^${BASE}/v1/results/${job.id}/x2\\.png\\?exp=\\d+&kid=t1&sig=[\\w-]+$`));
  });

  it("copies the runner's outputs into R2, downloadable through the signed URLs", async () => {
    const { secret } = await newKey();
    const input = await image();
    const job = await (await upscale(secret, input, { query: "scales=1" })).json<Job>();
    const download = await SELF.fetch(job.outputs?.[0]?.url ?? "");
    expect(download.status).toBe(200);
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(stubOutput(input, job.id, 1));
  });

  it("resolves format=auto from the Accept header", async () => {
    const { secret } = await newKey();
    const response = await upscale(secret, await image(), { query: "scales=2", headers: { accept: "image/avif,image/webp,*/*" } });
    const job = await response.json<Job>();
    expect(job.outputs?.[0]).toMatchObject({ contentType: "image/avif" });
    expect(job).toMatchObject({ options: { format: "avif", quality: DEFAULT_QUALITY } });
  });

  it("settles the reservation and writes one billable ledger row", async () => {
    const { key, secret } = await newKey();
    const job = await (await upscale(secret, await png(100, 100))).json<Job>();
    expect(await ledgerOf(key.id)).toEqual([{ job_id: job.id, input_mp: 0.01, cache_hit: 0 }]);
    expect(await meterOf(key.id).usage()).toMatchObject({ settledMp: 0.01, reservedMp: 0 });
  });

  it("sends RateLimit headers", async () => {
    const { secret } = await newKey({ rateLimitPerMin: 30 });
    const response = await upscale(secret, await image());
    expect(response.headers.get("ratelimit-limit")).toBe("30");
    expect(response.headers.get("ratelimit-remaining")).toBe("29");
  });
});

describe("asynchronous upscales", () => {
  it("answers 202 with Location, and the job can be read until it is done", async () => {
    const { secret } = await newKey();
    const response = await upscale(secret, await image(), { headers: { prefer: "respond-async" } });
    expect(response.status).toBe(202);
    const location = response.headers.get("location") ?? "";
    expect(location).toMatch(/^\/v1\/upscales\/j_[a-z2-7]{20}$/);
    const job = await (await withKey(secret, location)).json<Job>();
    expect(job.status).toBe("succeeded");
    expect(job.outputs).toHaveLength(3);
  });

  it("hides a job from other keys", async () => {
    const owner = await newKey();
    const other = await newKey();
    const job = await (await upscale(owner.secret, await image())).json<Job>();
    const response = await withKey(other.secret, `/v1/upscales/${job.id}`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ code: "job_not_found" });
  });
});

describe("the result cache", () => {
  it("answers the same image and options from the cache, not billed, with a ledger row", async () => {
    const { key, secret } = await newKey();
    const input = await image();
    const first = await (await upscale(secret, input, { query: "scales=2" })).json<Job>();
    const response = await upscale(secret, input, { query: "scales=2", headers: { prefer: "" } });
    expect(response.status).toBe(200);
    const hit = await response.json<Job>();
    expect(hit.id).not.toBe(first.id);
    expect(hit.usage).toEqual({ inputMp: 0.001, cacheHit: true, billable: false, billedMp: 0 });
    // Its own copy of the results, so that deleting one job never takes another's (DELETE /v1/upscales/{id}).
    expect(hit.outputs?.[0]?.url).toContain(`/v1/results/${hit.id}/x2.png`);
    expect((await ledgerOf(key.id)).map((row) => row.cache_hit)).toEqual([0, 1]);
    expect(await meterOf(key.id).usage()).toMatchObject({ settledMp: 0.001, reservedMp: 0 });
  });

  it("shares cached results across keys", async () => {
    const a = await newKey();
    const b = await newKey();
    const input = await image();
    await upscale(a.secret, input);
    expect(await (await upscale(b.secret, input)).json()).toMatchObject({ usage: { cacheHit: true } });
  });

  it("gives another key its own job id and result URLs, never the first key's", async () => {
    const a = await newKey();
    const b = await newKey();
    const input = await image();
    const first = await (await upscale(a.secret, input, { query: "scales=2" })).json<Job>();
    const hit = await (await upscale(b.secret, input, { query: "scales=2" })).json<Job>();
    expect(hit.usage).toMatchObject({ cacheHit: true });
    expect(hit.id).not.toBe(first.id);
    expect(hit.outputs?.[0]?.url).toContain(`/v1/results/${hit.id}/x2.png?`);
    expect(JSON.stringify(hit)).not.toContain(first.id);
  });

  it("serves another key's cache hit with the same bytes under its own URLs", async () => {
    const a = await newKey();
    const b = await newKey();
    const input = await image();
    const first = await (await upscale(a.secret, input, { query: "scales=2" })).json<Job>();
    const hit = await (await upscale(b.secret, input, { query: "scales=2" })).json<Job>();
    const download = await SELF.fetch(hit.outputs?.[0]?.url ?? "");
    expect(download.status).toBe(200);
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(stubOutput(input, first.id, 2));
  });

  it("treats other options as another result", async () => {
    const { secret } = await newKey();
    const input = await image();
    await upscale(secret, input, { query: "scales=2" });
    expect(await (await upscale(secret, input, { query: "scales=2,4" })).json()).toMatchObject({ usage: { cacheHit: false } });
    expect(await (await upscale(secret, input, { query: "scales=2&format=webp" })).json()).toMatchObject({ usage: { cacheHit: false } });
  });

  it("encodes again what an earlier output encoding made, instead of answering with its files", async () => {
    const { secret } = await newKey();
    const input = await image();
    const made = await (await upscale(secret, input, { query: "scales=2&format=avif" })).json<Job>();
    const job = await getJob(env.DB, made.id);
    if (job === null) throw new Error("the job is not stored");
    const sha256 = await sha256Hex(input);
    expect(job.cacheKey).toBe((await hashRequest(sha256, job.options, env.MODEL_VERSION)).cacheKey);
    // The row as a deployment whose runners encoded with the previous settings would have written it.
    const before = await hashRequest(sha256, job.options, env.MODEL_VERSION, undefined, ENCODING_VERSION - 1);
    await env.DB.prepare("UPDATE jobs SET cache_key = ? WHERE id = ?").bind(before.cacheKey, made.id).run();
    const again = await upscale(secret, input, { query: "scales=2&format=avif" });
    expect(await again.json()).toMatchObject({ usage: { cacheHit: false } });
  });

  it("normalizes options, so equivalent requests share a result", async () => {
    const { secret } = await newKey();
    const input = await image();
    await upscale(secret, input, { query: "scales=4,2&format=png&quality=50" });
    const again = await upscale(secret, input, { query: "scales=x2,4,2&format=png&quality=80" });
    expect(await again.json()).toMatchObject({ usage: { cacheHit: true } });
  });

  it("drops the temperature where the runners' model is deterministic: every temperature shares one result, and the job says 0", async () => {
    const { secret } = await newKey();
    const input = await image();
    await upscale(secret, input, { query: "scales=2&temperature=0" });
    const again = await upscale(secret, input, { query: "scales=2&temperature=1.5" });
    expect(await again.json()).toMatchObject({ usage: { cacheHit: true }, options: { temperature: 0 } });
  });

  it("keeps the temperature where the runners' model samples, so that it is another result", () => {
    const params = parseUpscaleParams({ scales: "2", temperature: "1.5" });
    expect(normalizeUpscaleOptions(params, undefined, { sampling: true, cleanup: true }).temperature).toBe(1.5);
    expect(normalizeUpscaleOptions(params, undefined, { sampling: false, cleanup: true }).temperature).toBe(0);
  });

  it("keeps a clean-up strength the runners' model takes: another result, which the job shows", async () => {
    const { secret } = await newKey();
    const input = await image();
    const byDefault = await (await upscale(secret, input, { query: "scales=2" })).json<Job>();
    const none = await upscale(secret, input, { query: "scales=2&cleanup=0" });
    expect(none.status).toBe(200);
    const job = await none.json<Job>();
    expect(byDefault.options.cleanup).toBe("auto");
    expect(job).toMatchObject({ usage: { cacheHit: false }, options: { cleanup: 0 } });
  });

  it("shows the strength the model applied, the one auto chose too, on the job and on its cache hits", async () => {
    const { secret } = await newKey();
    const input = await image();
    const computed = await (await upscale(secret, input, { query: "scales=2" })).json<Job>();
    const hit = await (await upscale(secret, input, { query: "scales=2" })).json<Job>();
    const asked = await (await upscale(secret, input, { query: "scales=2&cleanup=0.3" })).json<Job>();
    // The stub runner reads none of its images as noisy: auto is the default strength there.
    expect([computed.cleanupApplied, hit.cleanupApplied, asked.cleanupApplied]).toEqual([0.75, 0.75, 0.3]);
    expect(hit.usage.cacheHit).toBe(true);
  });

  it("cleans fully where the runners' model has no clean-up setting", () => {
    const params = parseUpscaleParams({ scales: "2", cleanup: "0.25" });
    expect(normalizeUpscaleOptions(params, undefined, { sampling: false, cleanup: true }).cleanup).toBe(0.25);
    expect(normalizeUpscaleOptions(params, undefined, { sampling: false, cleanup: false }).cleanup).toBe(1);
    expect(normalizeUpscaleOptions(parseUpscaleParams({ scales: "2" }), undefined, { sampling: false, cleanup: false }).cleanup).toBe(1);
  });

  it("refuses a clean-up strength outside 0 to 1 before anything is stored", async () => {
    const { secret } = await newKey();
    const response = await upscale(secret, await image(), { query: "scales=2&cleanup=1.5" });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: "invalid_options" });
  });
});

describe("Idempotency-Key", () => {
  it("gives the same job for the same key and body", async () => {
    const { key, secret } = await newKey();
    const input = await image();
    const headers = { "idempotency-key": "order-1" };
    const first = await (await upscale(secret, input, { headers })).json<Job>();
    const second = await upscale(secret, input, { headers });
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect((await second.json<Job>()).id).toBe(first.id);
    expect(await jobCount(key.id)).toBe(1);
    expect(await ledgerOf(key.id)).toHaveLength(1);
  });

  it("answers 409 when the key is reused with another body", async () => {
    const { secret } = await newKey();
    const headers = { "idempotency-key": "order-2" };
    await upscale(secret, await image(), { headers });
    const response = await upscale(secret, await image(), { headers });
    expect(response.status).toBe(409);
    expect(await response.json()).toMatchObject({ code: "idempotency_key_reused" });
  });

  it("answers 409 when the key is reused with the same image but other options", async () => {
    const { secret } = await newKey();
    const input = await image();
    const headers = { "idempotency-key": "order-3" };
    await upscale(secret, input, { headers, query: "scales=2" });
    expect((await upscale(secret, input, { headers, query: "scales=4" })).status).toBe(409);
  });

  it("creates one job for concurrent requests with the same key", async () => {
    const { key, secret } = await newKey();
    const input = await image();
    const responses = await Promise.all(Array.from({ length: 5 }, () => upscale(secret, input, { headers: { "idempotency-key": "order-4" } })));
    const ids = new Set(await Promise.all(responses.map(async (r) => (await r.json<Job>()).id)));
    expect(ids.size).toBe(1);
    expect(await jobCount(key.id)).toBe(1);
  });

  it("waits on a replay with Prefer: wait as on a fresh request", async () => {
    const { secret } = await newKey();
    const input = await png(30, 30, { text: { "hvar-test": "slow" } });
    const headers = { "idempotency-key": "order-wait" };
    const first = await upscale(secret, input, { headers: { ...headers, prefer: "respond-async" } });
    expect(first.status).toBe(202);
    const replay = await upscale(secret, input, { headers: { ...headers, prefer: "wait=10" } });
    expect(replay.status).toBe(200);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.headers.get("preference-applied")).toBe("wait=10");
    expect(await replay.json<Job>()).toMatchObject({ id: (await first.json<Job>()).id, status: "succeeded" });
  });

  it("runs a retry again after a 503: a job no runner took does not keep the key", async () => {
    const { key, secret } = await newKey();
    const input = await png(30, 30, { text: { "hvar-test": "flaky" } });
    const headers = { "idempotency-key": "order-after-503" };
    const first = await upscale(secret, input, { headers });
    expect(first.status).toBe(503);
    const retry = await upscale(secret, input, { headers });
    expect(retry.status).toBe(200);
    expect(retry.headers.get("idempotent-replayed")).toBeNull();
    expect(await retry.json<Job>()).toMatchObject({ status: "succeeded", usage: { billable: true } });
    expect(await meterOf(key.id).usage()).toMatchObject({ settledMp: 0.0009, reservedMp: 0 });
    const again = await upscale(secret, input, { headers });
    expect(again.headers.get("idempotent-replayed")).toBe("true");
  });

  it("replays a refused image as the same refusal (422 with the runner's code), not as a failure of the service", async () => {
    const { secret } = await newKey();
    const input = await png(30, 30, { text: { "hvar-test": "reject" } });
    const headers = { "idempotency-key": "order-refused" };
    const first = await upscale(secret, input, { headers });
    expect(first.status).toBe(422);
    const replay = await upscale(secret, input, { headers });
    expect(replay.status).toBe(422);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(await replay.json()).toEqual(await first.json());
  });

  it("is scoped to the API key", async () => {
    const a = await newKey();
    const b = await newKey();
    const headers = { "idempotency-key": "shared-name" };
    const first = await (await upscale(a.secret, await image(), { headers })).json<Job>();
    const second = await upscale(b.secret, await image(), { headers });
    expect(second.status).toBe(200);
    expect((await second.json<Job>()).id).not.toBe(first.id);
  });
});

describe("failures are refunded", () => {
  const behaviour = (name: string) => png(30, 30, { text: { "hvar-test": name } });

  it("answers 502 when the runner fails the job, and refunds the quota", async () => {
    const { key, secret } = await newKey();
    const response = await upscale(secret, await behaviour("fail"));
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({ code: "inference_failed", jobId: expect.stringMatching(/^j_/) });
    expect(await meterOf(key.id).usage()).toMatchObject({ settledMp: 0, reservedMp: 0 });
    expect(await ledgerOf(key.id)).toEqual([]);
  });

  it("answers 422 with the runner's own reason when the runner refuses the image, and refunds", async () => {
    const { key, secret } = await newKey();
    const response = await upscale(secret, await behaviour("reject"));
    expect(response.status).toBe(422);
    expect(await response.json()).toMatchObject({ code: "image_corrupt", title: "The image is corrupt or truncated and could not be decoded." });
    expect(await meterOf(key.id).usage()).toMatchObject({ settledMp: 0, reservedMp: 0 });
  });

  it("answers 503 with Retry-After when no runner of the pool accepts the job, and refunds", async () => {
    const { key, secret } = await newKey();
    const response = await upscale(secret, await behaviour("unavailable"));
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("5");
    expect(await response.json()).toMatchObject({ code: "no_runner_available" });
    expect(await meterOf(key.id).usage()).toMatchObject({ settledMp: 0, reservedMp: 0 });
  });

  it("never shows a runner's address in the answer nor in the job", async () => {
    const { secret } = await newKey();
    const response = await upscale(secret, await behaviour("unavailable"));
    const answer = await response.text();
    const { jobId } = JSON.parse(answer) as { jobId: string };
    const job = await (await withKey(secret, `/v1/upscales/${jobId}`)).text();
    for (const runner of env.RUNNER_URLS.split(",")) {
      expect(answer).not.toContain(new URL(runner).host);
      expect(job).not.toContain(new URL(runner).host);
    }
  });

  it("records the failed job as failed", async () => {
    const { secret } = await newKey();
    const { jobId } = await (await upscale(secret, await behaviour("fail"))).json<{ jobId: string }>();
    expect(await (await withKey(secret, `/v1/upscales/${jobId}`)).json()).toMatchObject({ status: "failed", error: { code: "inference_failed" } });
    const row = await env.DB.prepare("SELECT status FROM jobs WHERE id = ?").bind(jobId).first();
    expect(row).toEqual({ status: "failed" });
  });
});

describe("quota and rate limit", () => {
  it("refuses a job that would exceed the monthly quota with 429 quota_exceeded", async () => {
    const { key, secret } = await newKey({ monthlyQuotaMp: 0.015 });
    expect((await upscale(secret, await png(100, 100))).status).toBe(200);
    const response = await upscale(secret, await png(100, 100));
    expect(response.status).toBe(429);
    expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await response.json()).toMatchObject({ code: "quota_exceeded" });
    expect(await jobCount(key.id)).toBe(1);
  });

  it("refuses requests over the rate limit with 429 rate_limited and Retry-After", async () => {
    const { secret } = await newKey({ rateLimitPerMin: 1 });
    await upscale(secret, await image());
    const response = await upscale(secret, await image());
    expect(response.status).toBe(429);
    expect(response.headers.get("retry-after")).toEqual(expect.stringMatching(/^\d+$/));
    expect(response.headers.get("ratelimit-remaining")).toBe("0");
    expect(await response.json()).toMatchObject({ code: "rate_limited" });
  });

  it("sends RateLimit headers when a job is read, and counts the read", async () => {
    const { secret } = await newKey({ rateLimitPerMin: 30 });
    const job = await (await upscale(secret, await image())).json<Job>();
    const response = await withKey(secret, `/v1/upscales/${job.id}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("ratelimit-limit")).toBe("30");
    expect(response.headers.get("ratelimit-remaining")).toBe("28");
  });

  it("refuses reads of a job over the rate limit with 429 rate_limited", async () => {
    const { secret } = await newKey({ rateLimitPerMin: 1 });
    const job = await (await upscale(secret, await image())).json<Job>();
    const response = await withKey(secret, `/v1/upscales/${job.id}`);
    expect(response.status).toBe(429);
    expect(response.headers.get("retry-after")).toEqual(expect.stringMatching(/^\d+$/));
    expect(await response.json()).toMatchObject({ code: "rate_limited" });
  });
});
