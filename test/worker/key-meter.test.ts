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
