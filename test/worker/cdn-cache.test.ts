import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { putImage, sourceHashOf, variantOf } from "../../worker/src/cdn/cache";
import { deriveVariant } from "../../worker/src/cdn/generate";
import { normalizeCdnOptions, normalizeSourceUrl } from "../../worker/src/cdn/grammar";
import { sha256Hex } from "../../worker/src/security/crypto";
import { sniffImage } from "../../worker/src/validate/sniff";
import { ORIGIN, cdnKey, cdnUrl, get, pngSize, sourceUrl } from "./cdn";
import { jobCount, ledgerOf, meterOf, withKey } from "./helpers";
import { png } from "./images";
import { fetched, serve } from "./origin";

/** A real 40x30 PNG at a fresh source URL; `behaviour` is the stub runner's (`real` decodes). */
async function servedSource(behaviour?: string): Promise<string> {
  const source = sourceUrl();
  await serve(source, await png(40, 30, behaviour ? { text: { "hvar-test": behaviour } } : {}));
  return source;
}

const bytesOf = async (response: Response) => new Uint8Array(await response.arrayBuffer());

describe("the CDN cache", () => {
  it("serves a second request from the cache: no source fetch, no job, the same bytes and ETag", async () => {
    const issued = await cdnKey();
    const source = await servedSource();
    const url = await cdnUrl(issued, source, { format: "png" });
    const first = await get(url);
    expect(first.headers.get("x-hvar-cache")).toBe("miss");
    const second = await get(url);
    expect(second.headers.get("x-hvar-cache")).toBe("hit");
    expect(await bytesOf(second)).toEqual(await bytesOf(first));
    expect(second.headers.get("etag")).toBe(first.headers.get("etag"));
    expect(await fetched(source)).toHaveLength(1);
    expect(await jobCount(issued.key.id)).toBe(1);
  });

  it("answers 304 to If-None-Match with the ETag", async () => {
    const issued = await cdnKey();
    const url = await cdnUrl(issued, await servedSource(), { format: "png" });
    const etag = (await get(url)).headers.get("etag") ?? "";
    expect(etag).toMatch(/^"[0-9a-f]{64}"$/);
    const revalidated = await get(url, { "if-none-match": etag });
    expect(revalidated.status).toBe(304);
    expect(await revalidated.text()).toBe("");
  });

  it("shares one entry among spellings of the same options", async () => {
    const issued = await cdnKey();
    const url = await cdnUrl(issued, await servedSource(), { scale: 4, format: "png" });
    expect((await get(url)).headers.get("x-hvar-cache")).toBe("miss");
    expect((await get(url.replace("scale=4,format=png", "f=png,scale=4"))).headers.get("x-hvar-cache")).toBe("hit");
  });

  it("keeps format=auto apart by Accept, and says Vary: Accept", async () => {
    const issued = await cdnKey();
    const url = await cdnUrl(issued, await servedSource("real"), { format: "auto" });
    const types = [];
    for (const accept of ["image/avif,image/webp,*/*", "image/webp,*/*", "image/png,*/*"]) {
      const response = await get(url, { accept });
      expect(response.headers.get("vary")).toBe("Accept");
      types.push(response.headers.get("content-type"));
    }
    expect(types).toEqual(["image/avif", "image/webp", "image/png"]);
    expect((await get(url, { accept: "image/webp,*/*" })).headers.get("x-hvar-cache")).toBe("hit");
  });

  it("does not say Vary for an explicit format", async () => {
    const issued = await cdnKey();
    const response = await get(await cdnUrl(issued, await servedSource("real"), { format: "webp" }));
    expect(response.headers.get("vary")).toBeNull();
    expect(response.headers.get("content-type")).toBe("image/webp");
  });

  it("serves another API key's generated variant as a hit for that key", async () => {
    const [owner, other] = await Promise.all([cdnKey(), cdnKey()]);
    const source = await servedSource();
    await get(await cdnUrl(owner, source, { format: "png" }));
    const response = await get(await cdnUrl(other, source, { format: "png" }));
    expect(response.headers.get("x-hvar-cache")).toBe("hit");
    expect(await jobCount(other.key.id)).toBe(0);
    expect(await ledgerOf(other.key.id)).toMatchObject([{ cache_hit: 1 }]);
  });
});

describe("CDN purges", () => {
  it("make every variant of the source generate again from the origin", async () => {
    const issued = await cdnKey();
    const source = await servedSource("real");
    const urls = await Promise.all([cdnUrl(issued, source, { format: "png" }), cdnUrl(issued, source, { scale: 4, format: "webp" })]);
    for (const url of urls) await get(url);
    const purge = await withKey(issued.secret, "/v1/cdn/purge", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ source }) });
    expect(purge.status).toBe(200);
    // The x2 PNG is its base itself; the x4 WebP is derived from the x4 base: three objects.
    expect(await purge.json()).toEqual({ source, generation: 1, deletedObjects: 3 });
    for (const url of urls) expect((await get(url)).headers.get("x-hvar-cache")).toBe("miss");
    expect(await fetched(source)).toHaveLength(4);
  });

  it("are refused for sources outside the key's origins", async () => {
    const issued = await cdnKey();
    const purge = await withKey(issued.secret, "/v1/cdn/purge", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ source: "https://someone-else.example/photo.png" }),
    });
    expect(purge.status).toBe(403);
    expect(await purge.json()).toMatchObject({ code: "source_not_allowed" });
  });
});

describe("CDN metering", () => {
  it("bills a generated image to the key like an API job", async () => {
    const issued = await cdnKey();
    await get(await cdnUrl(issued, await servedSource(), { format: "png" }));
    expect(await ledgerOf(issued.key.id)).toEqual([{ job_id: expect.stringMatching(/^j_/), input_mp: 0.0012, cache_hit: 0 }]);
    expect(await meterOf(issued.key.id).usage()).toMatchObject({ settledMp: 0.0012, reservedMp: 0 });
  });

  it("counts cache hits without billing them", async () => {
    const issued = await cdnKey();
    const url = await cdnUrl(issued, await servedSource(), { format: "png" });
    for (let i = 0; i < 3; i++) await get(url);
    const ledger = await ledgerOf(issued.key.id);
    expect(ledger.map((row) => row.cache_hit)).toEqual([0, 1, 1]);
    expect(await meterOf(issued.key.id).usage()).toMatchObject({ settledMp: 0.0012 });
    const usage = await (await withKey(issued.secret, "/v1/usage?granularity=day")).json<{ buckets: { jobs: number; cacheHits: number; billableMp: number }[] }>();
    expect(usage.buckets).toEqual([expect.objectContaining({ jobs: 1, cacheHits: 2, billableMp: 0.0012 })]);
  });

  it("does not bill the same image bytes twice: another URL with them is a result-cache hit", async () => {
    const issued = await cdnKey();
    const bytes = await png(40, 30);
    const [first, second] = [sourceUrl("a.png"), sourceUrl("b.png")];
    await serve(first, bytes);
    await serve(second, bytes);
    await get(await cdnUrl(issued, first, { format: "png" }));
    const response = await get(await cdnUrl(issued, second, { format: "png" }));
    expect(response.status).toBe(200);
    expect((await ledgerOf(issued.key.id)).map((row) => row.cache_hit)).toEqual([0, 1]);
  });

  it("bills concurrent first requests for one new image once", async () => {
    const issued = await cdnKey();
    const url = await cdnUrl(issued, await servedSource(), { format: "png" });
    const responses = await Promise.all([get(url), get(url), get(url)]);
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(await jobCount(issued.key.id)).toBe(1);
    expect((await ledgerOf(issued.key.id)).filter((row) => row.cache_hit === 0)).toHaveLength(1);
  });

  it("refuses a new image past the monthly quota with 429 and Retry-After", async () => {
    const issued = await cdnKey({ monthlyQuotaMp: 0.001 });
    const response = await get(await cdnUrl(issued, await servedSource(), { format: "png" }));
    expect(response.status).toBe(429);
    expect(response.headers.get("x-hvar-cdn")).toBe("err=quota_exceeded");
    expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("limits the rate of new images, not of cache hits", async () => {
    const issued = await cdnKey({ rateLimitPerMin: 1 });
    const cached = await cdnUrl(issued, await servedSource(), { format: "png" });
    expect((await get(cached)).status).toBe(200);
    const fresh = await get(await cdnUrl(issued, await servedSource(), { format: "png" }));
    expect(fresh.status).toBe(429);
    expect(fresh.headers.get("x-hvar-cdn")).toBe("err=rate_limited");
    expect((await get(cached)).status).toBe(200);
  });

  it("answers a failed image's failure again for a while, without a new job", async () => {
    const issued = await cdnKey();
    const url = await cdnUrl(issued, await servedSource("fail"), { format: "png" });
    expect((await get(url)).status).toBe(502);
    const again = await get(url);
    expect(again.status).toBe(502);
    expect(again.headers.get("x-hvar-cdn")).toBe("err=inference_failed");
    expect(await jobCount(issued.key.id)).toBe(1);
  });

  it("generates an image again at the next request when the key canceled its job", async () => {
    const issued = await cdnKey({ scopes: ["cdn", "usage", "upscale"] });
    const source = sourceUrl();
    await serve(source, await png(40, 30, { text: { "hvar-test": "hang" } }));
    const url = await cdnUrl(issued, source, { format: "png" });
    const first = get(url);
    let running: { id: string } | null = null;
    for (let i = 0; i < 400 && !running; i++) {
      running = await env.DB.prepare("SELECT id FROM jobs WHERE key_id = ? AND status = 'running'").bind(issued.key.id).first<{ id: string }>();
      if (!running) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect((await withKey(issued.secret, `/v1/upscales/${running?.id}/cancel`, { method: "POST" })).status).toBe(200);
    expect((await first).status).toBe(503);
    await serve(source, await png(40, 30));
    expect((await get(url)).status).toBe(200);
    expect(await jobCount(issued.key.id)).toBe(2);
  });

  it("refunds the quota when the runner fails, and answers 502 with the reason", async () => {
    const issued = await cdnKey();
    const response = await get(await cdnUrl(issued, await servedSource("fail"), { format: "png" }));
    expect(response.status).toBe(502);
    expect(response.headers.get("x-hvar-cdn")).toBe("err=inference_failed");
    expect(await meterOf(issued.key.id).usage()).toMatchObject({ settledMp: 0, reservedMp: 0 });
  });
});

describe("CDN variants of one photo", () => {
  const widths = [100, 60, 30];

  it("run the model once for three widths of one scale", async () => {
    const issued = await cdnKey();
    const source = await servedSource("real");
    for (const width of widths) expect((await get(await cdnUrl(issued, source, { scale: 4, width, format: "webp" }))).status).toBe(200);
    expect(await jobCount(issued.key.id)).toBe(1);
  });

  it("bill three widths of one scale requested at once (a page with a srcset) once, and count the others as free", async () => {
    const issued = await cdnKey();
    const source = await servedSource("real");
    const urls = await Promise.all(widths.map((width) => cdnUrl(issued, source, { scale: 4, width, format: "webp" })));
    expect((await Promise.all(urls.map((url) => get(url)))).map((r) => r.status)).toEqual([200, 200, 200]);
    expect((await ledgerOf(issued.key.id)).map((row) => row.cache_hit).sort()).toEqual([0, 1, 1]);
    expect(await meterOf(issued.key.id).usage()).toMatchObject({ settledMp: 0.0012, reservedMp: 0 });
  });

  it("requested at once share one job", async () => {
    const issued = await cdnKey();
    const source = await servedSource("real");
    const urls = await Promise.all(widths.map((width) => cdnUrl(issued, source, { scale: 2, width, format: "png" })));
    await Promise.all(urls.map((url) => get(url)));
    expect(await jobCount(issued.key.id)).toBe(1);
  });

  it("in other formats and qualities are derived from the same model run", async () => {
    const issued = await cdnKey();
    const source = await servedSource("real");
    const types = [];
    for (const options of [{ format: "png" }, { format: "webp", quality: 50 }, { format: "jpeg" }, { format: "avif" }] as const) {
      types.push((await get(await cdnUrl(issued, source, { scale: 2, ...options }))).headers.get("content-type"));
    }
    expect(types).toEqual(["image/png", "image/webp", "image/jpeg", "image/avif"]);
    expect(await jobCount(issued.key.id)).toBe(1);
  });

  it("have the size of their fit of the one upscaled image", async () => {
    const issued = await cdnKey();
    const source = await servedSource("real");
    const sizes = [];
    for (const width of widths) sizes.push((await get(await cdnUrl(issued, source, { scale: 4, width, format: "png" }))).headers.get("x-hvar-output"));
    expect(sizes).toEqual(["100x75", "60x45", "30x23"]);
  });

  it("of another scale run the model again", async () => {
    const issued = await cdnKey();
    const source = await servedSource("real");
    await get(await cdnUrl(issued, source, { scale: 2, width: 50, format: "png" }));
    await get(await cdnUrl(issued, source, { scale: 4, width: 50, format: "png" }));
    expect(await jobCount(issued.key.id)).toBe(2);
  });

  it("of another clean-up strength run the model again, at that strength; none written is the default, auto", async () => {
    const issued = await cdnKey();
    const source = await servedSource("real");
    await get(await cdnUrl(issued, source, { scale: 2, format: "png" }));
    await get(await cdnUrl(issued, source, { scale: 2, cleanup: 0, format: "png" }));
    await get(await cdnUrl(issued, source, { scale: 2, cleanup: 0.75, format: "png" }));
    await get(await cdnUrl(issued, source, { scale: 2, cleanup: 1, format: "png" }));
    const { results } = await env.DB.prepare("SELECT options FROM jobs WHERE key_id = ?").bind(issued.key.id).all<{ options: string }>();
    expect(results.map((r) => (JSON.parse(r.options) as { cleanup: number | string }).cleanup).sort()).toEqual([0, 0.75, 1, "auto"]);
  });
});

describe("CDN errors with onerror=redirect", () => {
  it("send the browser to the original image", async () => {
    const issued = await cdnKey();
    const source = await servedSource("fail");
    const response = await get(await cdnUrl(issued, source, { format: "png", onerror: "redirect" }));
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe(source);
    expect(response.headers.get("x-hvar-cdn")).toBe("err=inference_failed; redirect");
  });

  it("never redirect before the URL is authorized (no open redirect)", async () => {
    const issued = await cdnKey();
    const url = await cdnUrl(issued, await servedSource(), { format: "png", onerror: "redirect" });
    const response = await get(url.replace("format=png", "format=jpeg"));
    expect(response.status).toBe(403);
    expect(response.headers.get("location")).toBeNull();
  });
});

describe("CDN images from the runner", () => {
  it.each([
    [1, [40, 30]],
    [2, [80, 60]],
    [4, [160, 120]],
  ])("at scale=%i have the upscaled size", async (scale, size) => {
    const issued = await cdnKey();
    const response = await get(await cdnUrl(issued, await servedSource("real"), { scale, format: "png" }));
    expect(pngSize(await bytesOf(response))).toEqual(size);
    expect(response.headers.get("x-hvar-output")).toBe(size.join("x"));
    expect(response.headers.get("x-hvar-input")).toBe("40x30");
  });

  it("with denoise are the cleaned x1 at the input's size", async () => {
    const issued = await cdnKey();
    const response = await get(await cdnUrl(issued, await servedSource("real"), { denoise: true, format: "png" }));
    expect(pngSize(await bytesOf(response))).toEqual([40, 30]);
  });

  it("with width are fitted after super-resolution, keeping the aspect ratio", async () => {
    const issued = await cdnKey();
    const response = await get(await cdnUrl(issued, await servedSource("real"), { scale: 4, width: 100, format: "png" }));
    expect(pngSize(await bytesOf(response))).toEqual([100, 75]);
    expect(response.headers.get("x-hvar-output")).toBe("100x75");
  });

  it("with width, height and a format are fitted and encoded in that format", async () => {
    const issued = await cdnKey();
    const response = await get(await cdnUrl(issued, await servedSource("real"), { scale: 2, width: 50, height: 50, fit: "cover", format: "webp" }));
    expect(response.headers.get("content-type")).toBe("image/webp");
    const image = sniffImage(await bytesOf(response));
    expect([image.type, image.width, image.height]).toEqual(["webp", 50, 50]);
  });

  it("are stored in R2 under the source's prefix", async () => {
    const issued = await cdnKey();
    const source = await servedSource();
    await get(await cdnUrl(issued, source, { format: "png" }));
    const { sha256Hex } = await import("../../worker/src/security/crypto");
    const listing = await env.RESULTS.list({ prefix: `cdn/${await sha256Hex(source)}/` });
    expect(listing.objects).toHaveLength(1);
    expect(listing.objects[0]?.key).toMatch(/\.png$/);
  });
});

describe("CDN variants that Cloudflare Images answers in another format than asked", () => {
  /**
   * The local Images binding, answering WebP where AVIF is asked: Cloudflare's encodes on a best-effort
   * basis, and its AVIF stops at 1,200 px a side, which most x4 outputs pass.
   */
  function answeringWebpForAvif(images: ImagesBinding): ImagesBinding {
    const wrap = (transformer: ImageTransformer): ImageTransformer => ({
      transform: (transform) => wrap(transformer.transform(transform)),
      draw: (image, options) => wrap(transformer.draw(image, options)),
      output: (options) => transformer.output(options.format === "image/avif" ? { ...options, format: "image/webp" } : options),
    });
    return {
      info: (stream, options) => images.info(stream, options),
      input: (stream, options) => wrap(images.input(stream, options)),
      text: (content, options) => wrap(images.text(content, options)),
      get hosted() {
        return images.hosted;
      },
    };
  }

  /** A source whose x2 base is stored, and its AVIF variant as that binding derived it. */
  async function derivedAsWebp() {
    const source = sourceUrl();
    const options = normalizeCdnOptions({ scale: 2, width: 50, format: "avif" });
    const variant = await variantOf({ sourceUrl: normalizeSourceUrl(source), sourceHash: await sourceHashOf(normalizeSourceUrl(source)), generation: 0, options, accept: undefined, modelVersion: env.MODEL_VERSION });
    const base = await png(80, 60);
    await putImage(env.RESULTS, { r2Key: variant.base.r2Key, format: "png" }, base, { sha256: await sha256Hex(base), width: 80, height: 60, inputWidth: 40, inputHeight: 30 });
    await deriveVariant({ ...env, IMAGES: answeringWebpForAvif(env.IMAGES) }, variant, options);
    return { source, variant };
  }

  it("are stored as the format they are", async () => {
    const { variant } = await derivedAsWebp();
    const stored = await env.RESULTS.get(variant.r2Key);
    expect(stored?.httpMetadata?.contentType).toBe("image/webp");
    expect(sniffImage(new Uint8Array(await (stored as R2ObjectBody).arrayBuffer())).type).toBe("webp");
  });

  it("are served as the format they are, not the one the URL asked for", async () => {
    const { source } = await derivedAsWebp();
    const response = await get(await cdnUrl(await cdnKey(), source, { scale: 2, width: 50, format: "avif" }));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("image/webp");
    expect(sniffImage(await bytesOf(response)).type).toBe("webp");
  });
});

describe("CDN path sources", () => {
  it("resolve under the key's first origin", async () => {
    const issued = await cdnKey({ cdnOrigins: [ORIGIN, "https://second.example"] });
    const source = await servedSource();
    const url = await cdnUrl(issued, source, { format: "png" }, { defaultOrigin: ORIGIN });
    expect(url.endsWith(new URL(source).pathname)).toBe(true);
    expect((await get(url)).status).toBe(200);
  });
});
