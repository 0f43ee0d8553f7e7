import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { periodOf } from "../../worker/src/meter/key-meter";

const meterFor = (keyId: string) => env.KEY_METER.get(env.KEY_METER.idFromName(keyId));

describe("KeyMeter", () => {
  it("reserves quota and reports what remains", async () => {
    const meter = meterFor("key-reserve");
    expect(await meter.reserve("job-1", 3, 10)).toEqual({ ok: true, remainingMp: 7 });
    expect(await meter.usage()).toMatchObject({ settledMp: 0, reservedMp: 3 });
  });

  it("refuses a reservation that would exceed the quota", async () => {
    const meter = meterFor("key-exceed");
    await meter.reserve("job-1", 8, 10);
    expect(await meter.reserve("job-2", 3, 10)).toEqual({ ok: false, remainingMp: 2 });
  });

  it("counts a repeated reservation id once", async () => {
    const meter = meterFor("key-idempotent");
    await meter.reserve("job-1", 4, 10);
    await meter.reserve("job-1", 4, 10);
    expect((await meter.usage()).reservedMp).toBe(4);
  });

  it("holds the quota under concurrent reservations", async () => {
    const meter = meterFor("key-concurrent");
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => meter.reserve(`job-${i}`, 1, 5)));
    expect(results.filter((r) => r.ok)).toHaveLength(5);
  });

  it("settles a reservation into billed usage, with a corrected amount", async () => {
    const meter = meterFor("key-settle");
    await meter.reserve("job-1", 4, 10);
    expect(await meter.settle("job-1", 2.5)).toBe(true);
    expect(await meter.usage()).toMatchObject({ settledMp: 2.5, reservedMp: 0 });
  });

  it("refunds a reserved job but never a settled one", async () => {
    const meter = meterFor("key-refund");
    await meter.reserve("job-1", 4, 10);
    await meter.reserve("job-2", 1, 10);
    await meter.settle("job-2");
    expect(await meter.refund("job-1")).toBe(true);
    expect(await meter.refund("job-2")).toBe(false);
    expect(await meter.usage()).toMatchObject({ settledMp: 1, reservedMp: 0 });
  });

  it("starts each calendar month with the full quota", async () => {
    const meter = meterFor("key-month");
    const november = Date.UTC(2026, 10, 30);
    const december = Date.UTC(2026, 11, 1);
    await meter.reserve("job-1", 9, 10, november);
    expect(await meter.reserve("job-2", 9, 10, december)).toEqual({ ok: true, remainingMp: 1 });
    expect(periodOf(new Date(december))).toBe("2026-12");
  });
});

describe("KeyMeter rate limit", () => {
  const now = Date.UTC(2026, 10, 30, 12);

  it("starts with a full bucket and takes one token per request", async () => {
    const meter = meterFor("bucket-full");
    expect(await meter.take(3, now)).toEqual({ ok: true, granted: 1, limit: 3, remaining: 2, resetS: 20, retryAfterS: 0 });
  });

  it("refuses a request once the bucket is empty, saying when to retry", async () => {
    const meter = meterFor("bucket-empty");
    for (let i = 0; i < 3; i++) await meter.take(3, now);
    expect(await meter.take(3, now)).toMatchObject({ ok: false, remaining: 0, retryAfterS: 20 });
  });

  it("refills continuously at the per-minute rate", async () => {
    const meter = meterFor("bucket-refill");
    for (let i = 0; i < 3; i++) await meter.take(3, now);
    expect(await meter.take(3, now + 20_000)).toMatchObject({ ok: true });
    expect(await meter.take(3, now + 20_000)).toMatchObject({ ok: false });
  });

  it("hands out several tokens at once when asked, never more than the bucket holds", async () => {
    const meter = meterFor("bucket-lease");
    expect(await meter.take(10, now, 4)).toMatchObject({ ok: true, granted: 4, remaining: 6 });
    expect(await meter.take(10, now, 8)).toMatchObject({ ok: true, granted: 6, remaining: 0 });
    expect(await meter.take(10, now, 8)).toMatchObject({ ok: false, granted: 0 });
  });

  it("admits exactly the limit among 200 concurrent requests", async () => {
    const meter = meterFor("bucket-concurrent");
    const decisions = await Promise.all(Array.from({ length: 200 }, () => meter.take(50, now)));
    expect(decisions.filter((d) => d.ok)).toHaveLength(50);
  });
});
