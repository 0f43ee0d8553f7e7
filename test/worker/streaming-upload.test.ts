import { SELF, env } from "cloudflare:test";
import { MAX_INPUT_PIXELS, SCALES, inputKey } from "@hvar/contract";
import { describe, expect, inject, it } from "vitest";
import { configOf } from "../../worker/src/config";
import { edgeLimits } from "../../worker/src/dispatch";
import { RunnerPool, strictest } from "../../worker/src/dispatch/runner-pool";
import type { Dispatcher } from "../../worker/src/dispatch/types";
import { SNIFF_PREFIX_BYTES } from "../../worker/src/validate/body";
import { ascii, concat, u32be } from "../fixtures/bytes";
import { gif } from "../fixtures/crafted-images";
import { BASE, expectRefused, jobCount, newKey, upscale } from "./helpers";
import { png } from "./images";
import { STUB_LIMITS } from "./setup/stub-limits";

/**
 * An upload streams into R2 as it arrives (validate/body.ts, storage/uploads.ts): the worker never
 * holds the whole image, and an image whose first bytes show it too large is refused there, before
 * the rest of the body is read and before anything is billed. What is too large is what the runners
 * say they accept (GET /v1/model, their model manifest): the stubs say a 1 MP output at most, so x4
 * allows 256x256 inputs, where the worker's own default (64 MP) would allow 2048x2048.
 */

const CHUNK = 4096;

/** `bytes` as a request body that counts what the worker has read of it. */
function countedBody(bytes: Uint8Array): { body: ReadableStream<Uint8Array>; read: () => number } {
  let offset = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + CHUNK));
      offset += CHUNK;
    },
  });
  return { body, read: () => Math.min(offset, bytes.length) };
}

/** A PNG whose header says `width`x`height`, followed by `total` bytes in all of (unread) filler. */
function pngHeaderThenFiller(width: number, height: number, total: number): Uint8Array {
  const ihdr = concat([u32be(13), ascii("IHDR"), u32be(width), u32be(height), new Uint8Array([8, 2, 0, 0, 0]), u32be(0)]);
  const head = concat([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), ihdr]);
  const bytes = new Uint8Array(total);
  bytes.set(head);
  return bytes;
}

/** A GIF whose screen says 1x1 and whose one frame, after a comment of `comment` bytes, is `size`x`size`: the frame lies past the first bytes. */
function gifWithFramePast(size: number, comment: number): Uint8Array {
  const plain = gif({ width: 1, height: 1 }, [{ width: size, height: size }]);
  // Header (13 bytes) and its 4-colour palette (12 bytes), then the frame: the comment goes between.
  const blocks: Uint8Array[] = [new Uint8Array([0x21, 0xfe])];
  for (let left = comment; left > 0; left -= 255) blocks.push(new Uint8Array([Math.min(left, 255), ...new Uint8Array(Math.min(left, 255)).fill(0x61)]));
  blocks.push(new Uint8Array([0]));
  return concat([plain.subarray(0, 25), ...blocks, plain.subarray(25)]);
}

describe("an upload streamed into R2", () => {
  it("is refused on its first bytes when its header is too large for the runners (422 image_too_large), before the rest is read and before anything is billed", async () => {
    const { key, secret } = await newKey();
    const image = pngHeaderThenFiller(2000, 2000, 200 * 1024);
    const { body, read } = countedBody(image);
    const response = await SELF.fetch(`${BASE}/v1/upscales?scales=4`, { method: "POST", body, headers: { authorization: `Bearer ${secret}`, "content-type": "image/png" } });
    await expectRefused(response, 422, "image_too_large", key.id);
    expect(read()).toBeLessThan(SNIFF_PREFIX_BYTES + 4 * CHUNK);
    expect(read()).toBeLessThan(image.length);
  });

  it("is refused the same way as the image part of a multipart body, its scales given before it", async () => {
    const { key, secret } = await newKey();
    const form = new FormData();
    form.append("scales", "4");
    form.append("image", new Blob([pngHeaderThenFiller(2000, 2000, 200 * 1024)], { type: "image/png" }), "big.png");
    const multipart = new Response(form);
    const contentType = multipart.headers.get("content-type") ?? "";
    const encoded = new Uint8Array(await multipart.arrayBuffer());
    const { body, read } = countedBody(encoded);
    const response = await SELF.fetch(`${BASE}/v1/upscales`, { method: "POST", body, headers: { authorization: `Bearer ${secret}`, "content-type": contentType } });
    await expectRefused(response, 422, "image_too_large", key.id);
    expect(read()).toBeLessThan(SNIFF_PREFIX_BYTES + 4 * CHUNK);
  });

  it("reads a size that lies past the first bytes from the stored object by range (a GIF frame after a long comment), and refuses by it", async () => {
    const { key, secret } = await newKey();
    const image = gifWithFramePast(300, 100 * 1024);
    expect(image.length).toBeGreaterThan(SNIFF_PREFIX_BYTES);
    const response = await upscale(secret, image, { query: "scales=4", headers: { "content-type": "image/gif" } });
    await expectRefused(response, 422, "image_too_large", key.id);
  });

  it("leaves no input behind when it is refused after it was stored", async () => {
    const { key, secret } = await newKey();
    const before = (await env.RESULTS.list({ prefix: "inputs/" })).objects.length;
    await expectRefused(await upscale(secret, gifWithFramePast(300, 100 * 1024), { query: "scales=4" }), 422, "image_too_large", key.id);
    expect((await env.RESULTS.list({ prefix: "inputs/" })).objects.length).toBeLessThanOrEqual(before);
  });

  it("is not kept when the multipart body around it turns out malformed after it was stored (400 malformed_multipart)", async () => {
    const { key, secret } = await newKey();
    const form = new FormData();
    form.append("scales", "2");
    form.append("image", new Blob([await png(64, 48)], { type: "image/png" }), "photo.png");
    // More option parts than a body may have, after the image.
    for (let i = 0; i < 40; i++) form.append(`extra${i}`, "x");
    const before = (await env.RESULTS.list({ prefix: "inputs/" })).objects.length;
    const response = await SELF.fetch(`${BASE}/v1/upscales`, { method: "POST", body: form, headers: { authorization: `Bearer ${secret}` } });
    await expectRefused(response, 400, "malformed_multipart", key.id);
    expect((await env.RESULTS.list({ prefix: "inputs/" })).objects.length).toBeLessThanOrEqual(before);
  });

  it("is the runner's input, streamed to it from R2: the job succeeds and its input is gone once it ended", async () => {
    const { key, secret } = await newKey();
    const response = await upscale(secret, await png(200, 150), { query: "scales=2" });
    expect(response.status).toBe(200);
    const job = (await response.json()) as { id: string; input: { width: number; height: number } };
    expect(job.input).toMatchObject({ width: 200, height: 150 });
    expect(await env.RESULTS.head(inputKey(job.id))).toBeNull();
    expect(await jobCount(key.id)).toBe(1);
  });
});

describe("the limits the edge enforces", () => {
  const urls = env.RUNNER_URLS.split(",");
  const pool = (list: string[]) => new RunnerPool({ urls: list, secret: env.RUNNER_HMAC_SECRET, timeoutMs: 2000, bucket: env.RESULTS, model: env.MODEL_VERSION });

  it("are what the runners say they accept (GET /v1/model)", async () => {
    expect(await pool(urls).limits()).toEqual(STUB_LIMITS);
  });

  it("are the worker's own (packages/contract's limits.ts) where no runner has been heard", async () => {
    const dead = pool([env.TEST_DEAD_RUNNER_URL]);
    expect(await dead.limits()).toBeNull();
    const config = configOf(env);
    expect(await edgeLimits(config, dead)).toEqual({ maxInputPixels: MAX_INPUT_PIXELS, maxOutputPixels: config.MAX_OUTPUT_PIXELS, maxBytes: config.MAX_UPLOAD_BYTES, scales: SCALES, sampling: true, cleanup: true });
  });

  it("take no runner that serves another model into account", async () => {
    const other = pool([inject("otherModelRunner").url]);
    expect(await other.limits()).toBeNull();
  });

  it("are the strictest of several runners', within the worker's own", async () => {
    const small = { maxInputPixels: 1000, maxOutputPixels: 5000, maxBodyBytes: 100, scales: [1, 2] as const, sampling: false, cleanup: false };
    expect(strictest([STUB_LIMITS, { ...small, scales: [1, 2] }])).toEqual({ ...small, scales: [1, 2], cleanup: true });
    const dispatcher = { limits: async () => ({ ...small, scales: [1, 2] }) } as unknown as Dispatcher;
    expect(await edgeLimits(configOf(env), dispatcher)).toEqual({ maxInputPixels: 1000, maxOutputPixels: 5000, maxBytes: 100, scales: [1, 2], sampling: false, cleanup: false });
  });

  it("keep a clean-up strength where any runner of the pool takes one", () => {
    expect(strictest([STUB_LIMITS, { ...STUB_LIMITS, cleanup: false }])?.cleanup).toBe(true);
    expect(strictest([{ ...STUB_LIMITS, cleanup: false }, { ...STUB_LIMITS, cleanup: false }])?.cleanup).toBe(false);
  });

  it("keep a temperature where any runner of the pool samples", () => {
    expect(strictest([STUB_LIMITS, { ...STUB_LIMITS, sampling: true }])?.sampling).toBe(true);
    expect(strictest([STUB_LIMITS, STUB_LIMITS])?.sampling).toBe(false);
  });

  it("refuse at the edge, with the runners' numbers, an image the worker's defaults would take (300x300 at x4)", async () => {
    const { key, secret } = await newKey();
    const response = await upscale(secret, await png(300, 300), { query: "scales=4" });
    expect(response.status).toBe(422);
    expect(await response.clone().json()).toMatchObject({ code: "image_too_large", maxInputPixels: STUB_LIMITS.maxOutputPixels / 16 });
    await expectRefused(response, 422, "image_too_large", key.id);
  });
});
