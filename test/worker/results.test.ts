import { SELF, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../worker/src/security/crypto";
import { signResultPath } from "../../worker/src/security/result-url";
import { putResult } from "../../worker/src/storage/results";
import { BASE } from "./helpers";
import { png } from "./images";
import { idDigits } from "./unique";

const KEYS = JSON.parse(env.RESULT_SIGNING_KEYS) as Record<string, string>;
let counter = 0;

/** Stores a real PNG as a result and returns its signed path. */
async function storedResult(): Promise<{ path: string; key: string; bytes: Uint8Array; sha256: string }> {
  counter += 1;
  const job = `j_${idDigits(counter, 4)}${"b".repeat(16)}`;
  const bytes = await png(64, 48);
  const sha256 = await sha256Hex(bytes);
  const key = `results/${job}/x2.png`;
  await putResult(env.RESULTS, { key, contentType: "image/png", sha256, bytes: bytes.length }, bytes.slice().buffer);
  return { path: await signResultPath(`/v1/${key}`, KEYS, 3600), key, bytes, sha256 };
}

const get = (path: string, headers: HeadersInit = {}) => SELF.fetch(`${BASE}${path}`, { headers });

describe("downloading a result through its signed URL", () => {
  it("streams the stored bytes with a strong ETag and long cache headers", async () => {
    const { path, bytes, sha256 } = await storedResult();
    const response = await get(path);
    expect(response.status).toBe(200);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(bytes);
    expect(response.headers.get("content-type")).toBe("image/png");
    expect(response.headers.get("etag")).toBe(`"${sha256}"`);
    expect(response.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
  });

  it("can be embedded on other sites", async () => {
    const response = await get((await storedResult()).path);
    await response.arrayBuffer();
    expect(response.headers.get("cross-origin-resource-policy")).toBe("cross-origin");
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("answers a Range request with 206 and the requested bytes", async () => {
    const { path, bytes } = await storedResult();
    const response = await get(path, { range: "bytes=8-15" });
    expect(response.status).toBe(206);
    expect(response.headers.get("content-range")).toBe(`bytes 8-15/${bytes.length}`);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(bytes.subarray(8, 16));
  });

  it("answers 304 when If-None-Match has the ETag", async () => {
    const { path, sha256 } = await storedResult();
    const response = await get(path, { "if-none-match": `"${sha256}"` });
    expect(response.status).toBe(304);
  });

  it("is served from the edge cache once warm", async () => {
    const { path } = await storedResult();
    const first = await get(path);
    await first.arrayBuffer();
    expect(first.headers.get("x-hvar-cache")).toBe("miss");
    const second = await get(path);
    await second.arrayBuffer();
    expect(second.headers.get("x-hvar-cache")).toBe("hit");
  });

  it("serves a small result again from the isolate's memory, without the edge cache or R2", async () => {
    const { path, key, bytes, sha256 } = await storedResult();
    await (await get(path)).arrayBuffer();
    await caches.default.delete(`https://results.hvar.internal/${key}`);
    await env.RESULTS.delete(key);
    for (let i = 0; i < 2; i++) {
      const again = await get(path);
      expect(again.status).toBe(200);
      expect(again.headers.get("etag")).toBe(`"${sha256}"`);
      expect(new Uint8Array(await again.arrayBuffer())).toEqual(bytes);
    }
  });

  it("answers a Range request from the edge cache or R2 only, never from memory", async () => {
    const { path, key } = await storedResult();
    await (await get(path)).arrayBuffer();
    await caches.default.delete(`https://results.hvar.internal/${key}`);
    await env.RESULTS.delete(key);
    const part = await get(path, { range: "bytes=0-7" });
    expect(part.status).toBe(404);
  });

  it("answers 404 result_not_found for a signed URL of a missing object", async () => {
    const path = await signResultPath("/v1/results/j_zzzzzzzzzzzzzzzzzzzz/x4.png", KEYS, 3600);
    const response = await get(path);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ code: "result_not_found" });
  });
});

describe("refusing altered or expired URLs", () => {
  it("refuses an altered signature with 403 invalid_signature", async () => {
    const { path } = await storedResult();
    const url = new URL(path, BASE);
    const sig = url.searchParams.get("sig") ?? "";
    url.searchParams.set("sig", (sig[0] === "A" ? "B" : "A") + sig.slice(1));
    const response = await get(url.pathname + url.search);
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: "invalid_signature" });
  });

  it("refuses a URL whose path was changed to another scale", async () => {
    const { path } = await storedResult();
    const response = await get(path.replace("/x2.png", "/x4.png"));
    expect(response.status).toBe(403);
  });

  it("refuses a URL whose expiry was extended", async () => {
    const { path } = await storedResult();
    const url = new URL(path, BASE);
    url.searchParams.set("exp", String(Number(url.searchParams.get("exp")) + 3600));
    expect((await get(url.pathname + url.search)).status).toBe(403);
  });

  it("refuses an expired URL with 403 url_expired", async () => {
    const path = await signResultPath("/v1/results/j_zzzzzzzzzzzzzzzzzzzz/x2.png", KEYS, 60, Date.now() - 3_600_000);
    const response = await get(path);
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: "url_expired" });
  });

  it("refuses a URL without a signature", async () => {
    expect((await get("/v1/results/j_zzzzzzzzzzzzzzzzzzzz/x2.png")).status).toBe(403);
  });
});

describe("rotating signing keys", () => {
  it("accepts URLs signed by any configured key, not only the first", async () => {
    const { path } = await storedResult();
    const url = new URL(path, BASE);
    const older = await signResultPath(url.pathname, { t0: KEYS.t0 ?? "" }, 3600);
    const response = await get(older);
    await response.arrayBuffer();
    expect(response.status).toBe(200);
  });

  it("signs with the first key", async () => {
    const path = await signResultPath("/v1/results/j_zzzzzzzzzzzzzzzzzzzz/x2.png", KEYS, 60);
    expect(new URL(path, BASE).searchParams.get("kid")).toBe(Object.keys(KEYS)[0]);
  });

  it("refuses a URL signed by a key that is no longer configured", async () => {
    const path = await signResultPath("/v1/results/j_zzzzzzzzzzzzzzzzzzzz/x2.png", { retired: "cmV0aXJlZC1rZXktcmV0aXJlZC1rZXk=" }, 3600);
    expect((await get(path)).status).toBe(403);
  });
});
