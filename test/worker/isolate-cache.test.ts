import { describe, expect, it } from "vitest";
import { IsolateCache } from "../../worker/src/storage/isolate-cache";

/** A cache on a clock the test moves. */
function cacheAt(options: { ttlMs: number; maxEntries: number }) {
  const clock = { now: 1_000 };
  return { clock, cache: new IsolateCache<string, number>({ ...options, now: () => clock.now }) };
}

describe("IsolateCache", () => {
  it("answers an entry until its ttl has passed, and not after", () => {
    const { clock, cache } = cacheAt({ ttlMs: 5_000, maxEntries: 10 });
    cache.set("a", 1);
    clock.now += 4_999;
    expect(cache.get("a")).toBe(1);
    clock.now += 1;
    expect(cache.get("a")).toBeUndefined();
  });

  it("starts an entry's ttl again when it is set again", () => {
    const { clock, cache } = cacheAt({ ttlMs: 5_000, maxEntries: 10 });
    cache.set("a", 1);
    clock.now += 4_000;
    cache.set("a", 2);
    clock.now += 4_000;
    expect(cache.get("a")).toBe(2);
  });

  it("keeps at most maxEntries, dropping the oldest first", () => {
    const { cache } = cacheAt({ ttlMs: 5_000, maxEntries: 2 });
    cache.set("a", 1);
    cache.set("b", 2);
    cache.set("c", 3);
    expect([cache.get("a"), cache.get("b"), cache.get("c")]).toEqual([undefined, 2, 3]);
  });

  it("deletes one entry, or every entry whose value matches", () => {
    const { cache } = cacheAt({ ttlMs: 5_000, maxEntries: 10 });
    cache.set("a", 1);
    cache.set("b", 2);
    cache.set("c", 2);
    cache.delete("a");
    cache.deleteWhere((value) => value === 2);
    expect([cache.get("a"), cache.get("b"), cache.get("c")]).toEqual([undefined, undefined, undefined]);
  });

  it("refuses a ttl or a size that cannot hold anything", () => {
    expect(() => new IsolateCache({ ttlMs: 0, maxEntries: 10 })).toThrow(/ttlMs/);
    expect(() => new IsolateCache({ ttlMs: 1_000, maxEntries: 0 })).toThrow(/maxEntries/);
  });
});
