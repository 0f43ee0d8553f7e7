import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { meterOf, newKey, withKey } from "./helpers";

/** The tokens in the key's bucket, as its KeyMeter holds them. */
async function bucketOf(keyId: string): Promise<number> {
  return runInDurableObject(meterOf(keyId), (_meter, state) => state.storage.sql.exec<{ tokens: number }>("SELECT tokens FROM bucket").one().tokens);
}

/** A rate-limited call that does little else: reading an upscale that does not exist (404). */
const call = (secret: string) => withKey(secret, "/v1/upscales/j_doesnotexist");

describe("the rate limit's lease in the isolate", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("takes one second of the key's refill from its KeyMeter at once, and spends it without asking again", async () => {
    const { key, secret } = await newKey({ rateLimitPerMin: 6_000 });
    expect((await call(secret)).status).toBe(404);
    const afterLease = await bucketOf(key.id);
    expect(afterLease).toBeLessThanOrEqual(6_000 - 100 + 1);
    for (let i = 0; i < 5; i++) await call(secret);
    expect(await bucketOf(key.id)).toBe(afterLease);
  });

  it("counts RateLimit-Remaining down by one per request, as the meter alone would", async () => {
    const { secret } = await newKey({ rateLimitPerMin: 6_000 });
    // The clock stands still, so that the bucket does not refill between the requests.
    vi.useFakeTimers({ toFake: ["Date"] });
    const remaining: number[] = [];
    for (let i = 0; i < 3; i++) remaining.push(Number((await call(secret)).headers.get("ratelimit-remaining")));
    expect(remaining).toEqual([5_999, 5_998, 5_997]);
  });

  it("admits no more than the limit: a lease comes out of the key's one bucket", async () => {
    const { secret } = await newKey({ rateLimitPerMin: 180 });
    // The clock stands still, so that the bucket does not refill while the test runs.
    vi.useFakeTimers({ toFake: ["Date"] });
    const statuses = [];
    for (let i = 0; i < 181; i++) statuses.push((await call(secret)).status);
    expect(statuses.slice(0, 180).every((status) => status === 404)).toBe(true);
    expect(statuses[180]).toBe(429);
  });

  it("asks the meter on every request of a key allowed under 120 per minute", async () => {
    const { key, secret } = await newKey({ rateLimitPerMin: 60 });
    await call(secret);
    await call(secret);
    expect(await bucketOf(key.id)).toBeCloseTo(58, 0);
  });
});
