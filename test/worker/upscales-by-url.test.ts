import { describe, expect, it } from "vitest";
import { ORIGIN, sourceUrl } from "./cdn";
import { expectRefused, newKey, withKey } from "./helpers";
import { png } from "./images";
import { fetched, redirect, serve } from "./origin";

/**
 * POST /v1/upscales with a JSON body naming the image by URL: fetched under the CDN sources' rules
 * (the key's CDN origins, public https hosts, redirects checked again, the size capped), then an
 * upload like any other.
 */
function byUrl(secret: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return withKey(secret, "/v1/upscales", {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers: { "content-type": "application/json", prefer: "wait=10", ...headers },
  });
}

/** A key that may upscale sources under ORIGIN. */
const urlKey = () => newKey({ cdnOrigins: [ORIGIN] });

/** A real 40x30 PNG at a fresh source URL under ORIGIN. */
async function servedImage(): Promise<string> {
  const source = sourceUrl();
  await serve(source, await png(40, 30));
  return source;
}

describe("an image by URL", () => {
  it("is fetched and upscaled like an upload", async () => {
    const { secret } = await urlKey();
    const response = await byUrl(secret, { image: await servedImage(), scales: [2], format: "png" });
    expect(response.status).toBe(200);
    const job = await response.json<{ status: string; input: { width: number; height: number; type: string }; outputs: { scale: number; width: number }[] }>();
    expect(job).toMatchObject({ status: "succeeded", input: { width: 40, height: 30, type: "png" } });
    expect(job.outputs.map((o) => [o.scale, o.width])).toEqual([[2, 80]]);
  });

  it("takes its options from the JSON body, scales as an array or a list", async () => {
    const { secret } = await urlKey();
    const image = await servedImage();
    const fromArray = await (await byUrl(secret, { image, scales: [4, 1], format: "png" })).json<{ options: { scales: number[] } }>();
    const fromList = await (await byUrl(secret, { image, scales: "1,4", format: "png" })).json<{ options: { scales: number[] } }>();
    expect([fromArray.options.scales, fromList.options.scales]).toEqual([
      [1, 4],
      [1, 4],
    ]);
  });

  it("is fetched once for a replay of its Idempotency-Key", async () => {
    const { secret } = await urlKey();
    const image = await servedImage();
    const first = await (await byUrl(secret, { image, scales: [2] }, { "idempotency-key": "by-url-1" })).json<{ id: string }>();
    const replay = await byUrl(secret, { image, scales: [2] }, { "idempotency-key": "by-url-1" });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect((await replay.json<{ id: string }>()).id).toBe(first.id);
    expect(await fetched(image)).toHaveLength(1);
  });

  it("of another URL under the same Idempotency-Key is a conflict", async () => {
    const { secret } = await urlKey();
    await byUrl(secret, { image: await servedImage(), scales: [2] }, { "idempotency-key": "by-url-2" });
    const other = await byUrl(secret, { image: await servedImage(), scales: [2] }, { "idempotency-key": "by-url-2" });
    expect(other.status).toBe(409);
    expect(await other.json()).toMatchObject({ code: "idempotency_key_reused" });
  });

  it("outside the key's CDN origins is refused with 403 source_not_allowed, unfetched", async () => {
    const { key, secret } = await urlKey();
    const outside = sourceUrl("photo.png", "https://elsewhere.example");
    await serve(outside, await png(40, 30));
    await expectRefused(await byUrl(secret, { image: outside }), 403, "source_not_allowed", key.id);
    expect(await fetched(outside)).toEqual([]);
  });

  it("is refused with 403 source_not_allowed when the key lists no CDN origins", async () => {
    const { key, secret } = await newKey();
    await expectRefused(await byUrl(secret, { image: await servedImage() }), 403, "source_not_allowed", key.id);
  });

  it("over plain http is refused with 403 insecure_source", async () => {
    const { key, secret } = await newKey({ cdnOrigins: ["http://images.example"] });
    await expectRefused(await byUrl(secret, { image: "http://images.example/photo.png" }), 403, "insecure_source", key.id);
  });

  it("that redirects to a private address is refused with 403 private_source, the private address never fetched", async () => {
    const { key, secret } = await urlKey();
    const source = sourceUrl();
    await redirect(source, "https://169.254.169.254/latest/meta-data/");
    await expectRefused(await byUrl(secret, { image: source }), 403, "private_source", key.id);
    expect(await fetched("https://169.254.169.254/")).toEqual([]);
  });

  it("declared larger than the upload limit is refused with 413 source_too_large", async () => {
    const { key, secret } = await urlKey();
    const source = sourceUrl();
    await serve(source, new Uint8Array(256 * 1024 + 1));
    await expectRefused(await byUrl(secret, { image: source }), 413, "source_too_large", key.id);
  });

  it("that grows past the upload limit without a Content-Length is cut off with 413 source_too_large", async () => {
    const { key, secret } = await urlKey();
    const source = sourceUrl();
    await serve(source, new Uint8Array(256 * 1024 + 1), { chunked: true });
    await expectRefused(await byUrl(secret, { image: source }), 413, "source_too_large", key.id);
  });

  it("that does not exist is refused with 404 source_not_found", async () => {
    const { key, secret } = await urlKey();
    await expectRefused(await byUrl(secret, { image: sourceUrl() }), 404, "source_not_found", key.id);
  });

  it("whose origin fails is refused with 502 source_error", async () => {
    const { key, secret } = await urlKey();
    const source = sourceUrl();
    await serve(source, "down for maintenance", { status: 503 });
    await expectRefused(await byUrl(secret, { image: source }), 502, "source_error", key.id);
  });

  it("whose origin is too slow is refused with 504 source_timeout", async () => {
    const { key, secret } = await urlKey();
    const source = sourceUrl();
    await serve(source, await png(40, 30), { delayMs: 3000 });
    await expectRefused(await byUrl(secret, { image: source }), 504, "source_timeout", key.id);
  });

  it("that is not an image is refused with 415 unsupported_media_type", async () => {
    const { key, secret } = await urlKey();
    const source = sourceUrl("page.html");
    await serve(source, "<html><body>not an image</body></html>");
    await expectRefused(await byUrl(secret, { image: source }), 415, "unsupported_media_type", key.id);
  });
});

describe("a JSON body", () => {
  it("without an image URL is refused with 400 invalid_options", async () => {
    const { key, secret } = await urlKey();
    await expectRefused(await byUrl(secret, { scales: [2] }), 400, "invalid_options", key.id);
  });

  it("with an unknown option is refused with 400 invalid_options", async () => {
    const { key, secret } = await urlKey();
    await expectRefused(await byUrl(secret, { image: await servedImage(), sharpen: true }), 400, "invalid_options", key.id);
  });

  it("that is not JSON is refused with 400 malformed_json", async () => {
    const { key, secret } = await urlKey();
    await expectRefused(await byUrl(secret, "{ image: "), 400, "malformed_json", key.id);
  });

  it("that is not an object is refused with 400 malformed_json", async () => {
    const { key, secret } = await urlKey();
    await expectRefused(await byUrl(secret, [await servedImage()]), 400, "malformed_json", key.id);
  });
});

describe("the Content-Type of an upscale", () => {
  it("that is none of the accepted ones is refused with 415 unsupported_content_type, naming them", async () => {
    const { key, secret } = await urlKey();
    const response = await withKey(secret, "/v1/upscales", { method: "POST", body: "hello", headers: { "content-type": "text/plain" } });
    const problem = await response.clone().json<{ detail: string }>();
    expect(problem.detail).toContain("application/json");
    expect(problem.detail).toContain("multipart/form-data");
    await expectRefused(response, 415, "unsupported_content_type", key.id);
  });

  it("may be curl's default for --data-binary (form-urlencoded): the image's type is read from its bytes", async () => {
    const { secret } = await newKey();
    const response = await withKey(secret, "/v1/upscales?scales=2", {
      method: "POST",
      body: await png(40, 30),
      headers: { "content-type": "application/x-www-form-urlencoded", prefer: "wait=10" },
    });
    expect(response.status).toBe(200);
  });
});
