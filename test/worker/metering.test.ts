import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ledgerOf, meterOf, newKey, upscale, withKey } from "./helpers";
import { png } from "./images";

describe("200 concurrent requests for one key", () => {
  // 200 access-log lines would bury the test report.
  beforeEach(() => {
    vi.spyOn(console, "log").mockImplementation(() => undefined);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("bills every accepted job exactly once and never exceeds the quota", async () => {
    // 100x100 images are 0.01 MP each: the quota admits 60 of the 200.
    const { key, secret } = await newKey({ monthlyQuotaMp: 0.6, rateLimitPerMin: 10_000 });
    const images = await Promise.all(Array.from({ length: 200 }, () => png(100, 100)));
    const responses = await Promise.all(images.map((image) => upscale(secret, image, { query: "scales=1" })));
    const bodies = await Promise.all(responses.map((r) => r.json<{ id?: string; code?: string }>()));

    const accepted = bodies.filter((_, i) => responses[i]?.status === 200);
    const refused = bodies.filter((_, i) => responses[i]?.status === 429);
    expect(accepted).toHaveLength(60);
    expect(refused).toHaveLength(140);
    expect(refused.every((b) => b.code === "quota_exceeded")).toBe(true);

    const ledger = await ledgerOf(key.id);
    expect(ledger).toHaveLength(60);
    expect(new Set(ledger.map((row) => row.job_id))).toEqual(new Set(accepted.map((b) => b.id)));
    expect(ledger.every((row) => row.cache_hit === 0)).toBe(true);
    const usage = await meterOf(key.id).usage();
    expect(usage.reservedMp).toBe(0);
    expect(usage.settledMp).toBeCloseTo(0.6, 9);
    expect(usage.settledMp).toBeLessThanOrEqual(0.6 + 1e-9);
  }, 120_000);
});

describe("GET /v1/usage", () => {
  it("sums the ledger by day, with billable jobs and cache hits apart", async () => {
    const { secret } = await newKey();
    const image = await png(100, 100);
    await upscale(secret, image);
    await upscale(secret, image);
    const response = await withKey(secret, "/v1/usage?granularity=day");
    expect(response.status).toBe(200);
    const today = new Date().toISOString().slice(0, 10);
    expect(await response.json()).toMatchObject({
      granularity: "day",
      to: today,
      quota: { monthlyQuotaMp: 1000, settledMp: 0.01, reservedMp: 0 },
      buckets: [{ period: today, billableMp: 0.01, jobs: 1, cacheHits: 1 }],
    });
  });

  it("sums the ledger by month", async () => {
    const { secret } = await newKey();
    await upscale(secret, await png(100, 100));
    const body = await (await withKey(secret, "/v1/usage?granularity=month&from=2026-01-01")).json<{ buckets: unknown[] }>();
    expect(body.buckets).toEqual([expect.objectContaining({ period: new Date().toISOString().slice(0, 7), jobs: 1 })]);
  });

  it("refuses a malformed date with 400", async () => {
    const { secret } = await newKey();
    expect((await withKey(secret, "/v1/usage?from=yesterday")).status).toBe(400);
  });
});
