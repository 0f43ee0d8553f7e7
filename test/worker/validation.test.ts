import { DEFAULT_QUALITY } from "@hvar/contract";
import { describe, expect, it } from "vitest";
import { fixtures } from "./fixtures/images";
import { expectRefused, newKey, upscale, withKey } from "./helpers";
import { heifHeader, png } from "./images";

describe("validating uploads before any work", () => {
  it("refuses a declared Content-Length over the limit with 413", async () => {
    const { key, secret } = await newKey();
    const body = new Uint8Array(256 * 1024 + 1);
    const response = await upscale(secret, body, { headers: { "content-length": String(body.length) } });
    await expectRefused(response, 413, "payload_too_large", key.id);
  });

  it("refuses a streamed body that grows past the limit with 413", async () => {
    const { key, secret } = await newKey();
    const chunk = new Uint8Array(64 * 1024);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 5; i++) controller.enqueue(chunk);
        controller.close();
      },
    });
    const response = await withKey(secret, "/v1/upscales", { method: "POST", body: stream, headers: { "content-type": "image/png" } });
    await expectRefused(response, 413, "payload_too_large", key.id);
  });

  it("refuses an empty body with 400", async () => {
    const { key, secret } = await newKey();
    await expectRefused(await upscale(secret, new Uint8Array()), 400, "empty_body", key.id);
  });

  it("refuses SVG with 415, whatever the Content-Type says", async () => {
    const { key, secret } = await newKey();
    const svg = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
    await expectRefused(await upscale(secret, svg, { headers: { "content-type": "image/png" } }), 415, "unsupported_media_type", key.id);
  });

  it("refuses a truncated image with 400", async () => {
    const { key, secret } = await newKey();
    await expectRefused(await upscale(secret, (await png(20, 20)).subarray(0, 18)), 400, "malformed_image", key.id);
  });

  it.each([["gifAnimated"], ["webpAnimated"], ["apng"]] as const)("refuses an animated image (%s) with 422", async (name) => {
    const { key, secret } = await newKey();
    await expectRefused(await upscale(secret, fixtures[name]), 422, "animated_image", key.id);
  });

  it("refuses an image over the pixel limit of the largest requested scale with 422", async () => {
    const { key, secret } = await newKey();
    const response = await upscale(secret, await png(300, 300), { query: "scales=2,4" });
    await expectRefused(response, 422, "image_too_large", key.id);
  });

  it("refuses a HEIF whose header declares too many pixels with 422", async () => {
    const { key, secret } = await newKey();
    await expectRefused(await upscale(secret, heifHeader(4032, 3024), { query: "scales=1" }), 422, "image_too_large", key.id);
  });

  it.each([["scales=3"], ["format=bmp"], ["quality=0"], ["temperature=-1"], ["colour=red"]])("refuses invalid options (%s) with 400", async (query) => {
    const { key, secret } = await newKey();
    await expectRefused(await upscale(secret, await png(20, 20), { query }), 400, "invalid_options", key.id);
  });

  it("refuses a malformed Idempotency-Key with 400", async () => {
    const { key, secret } = await newKey();
    const response = await upscale(secret, await png(20, 20), { headers: { "idempotency-key": "two words" } });
    await expectRefused(response, 400, "invalid_idempotency_key", key.id);
  });
});

describe("accepted uploads", () => {
  it("accepts the same image at a smaller scale that fits the limit", async () => {
    const { secret } = await newKey();
    const response = await upscale(secret, await png(300, 300), { query: "scales=1,2" });
    expect(response.status).toBe(200);
  });

  it.each([["jpegBaseline"], ["jpegProgressive"], ["webpLossy"], ["webpLossless"], ["gifStatic"], ["avif"]] as const)(
    "accepts %s",
    async (name) => {
      const { secret } = await newKey();
      const response = await upscale(secret, fixtures[name], { headers: { "content-type": "application/octet-stream" } });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ input: { width: 40, height: 30 } });
    },
  );

  it("accepts multipart/form-data with the options as fields", async () => {
    const { secret } = await newKey();
    const form = new FormData();
    form.set("image", new File([await png(20, 10)], "in.png", { type: "image/png" }));
    form.set("scales", "4");
    form.set("format", "webp");
    const response = await withKey(secret, "/v1/upscales", { method: "POST", body: form, headers: { prefer: "wait=10" } });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ options: { scales: [4], format: "webp", quality: DEFAULT_QUALITY }, outputs: [{ scale: 4, width: 80, height: 40 }] });
  });

  it("refuses multipart without an image part with 400", async () => {
    const { key, secret } = await newKey();
    const form = new FormData();
    form.set("scales", "2");
    await expectRefused(await withKey(secret, "/v1/upscales", { method: "POST", body: form }), 400, "empty_body", key.id);
  });
});
