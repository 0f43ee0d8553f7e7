import { createHash, createHmac } from "node:crypto";
import { MODEL_PATH, SIGNATURE_HEADER, TIMESTAMP_HEADER, runnerModelSchema, signatureHeader, signingInput } from "@hvar/contract";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { exifTiff, gif, jpegWithExif } from "../fixtures/crafted-images";
import { type Job, download, newKey, stack, untilDone, upscale, usageOf } from "./helpers";

/** The runner's own word on what it accepts (GET /v1/model, signed as the worker signs it). */
async function runnerLimits() {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const bodySha256 = createHash("sha256").update("").digest("hex");
  const signature = signatureHeader(createHmac("sha256", stack.runnerSecret).update(signingInput({ method: "GET", pathAndQuery: MODEL_PATH, timestamp, bodySha256 })).digest("hex"));
  const response = await fetch(`${stack.runnerUrl}${MODEL_PATH}`, { headers: { [TIMESTAMP_HEADER]: timestamp, [SIGNATURE_HEADER]: signature } });
  return runnerModelSchema.parse(await response.json()).limits;
}

/**
 * What is billed and limited is what the runner's decoder processes, whatever a header claims, and
 * the outputs are exactly that size times the scale: through the whole stack, with the real decoder.
 */
describe("the pixels the decoder processes, end to end", () => {
  it("bills a GIF whose screen says 1x1 by its 1500x1500 frame: a key with 1 MP a month is refused", async () => {
    const { secret } = await newKey({ monthlyQuotaMp: 1 });
    const crafted = gif({ width: 1, height: 1 }, [{ width: 1500, height: 1500 }]);
    const response = await upscale(secret, crafted, "scales=2&format=png");
    expect(response.status).toBe(429);
    expect(await response.json()).toMatchObject({ code: "quota_exceeded", detail: expect.stringContaining("2.25 MP") });
    expect((await usageOf(secret)).quota).toMatchObject({ settledMp: 0, reservedMp: 0 });
  });

  it("runs such a GIF as what it is when the quota covers it: billed by its frame, the output its frame times the scale", async () => {
    const { secret } = await newKey();
    const crafted = gif({ width: 1, height: 1 }, [{ width: 120, height: 72 }]);
    const response = await upscale(secret, crafted, "scales=2&format=png");
    expect(response.status).toBe(202);
    const job = await untilDone(secret, ((await response.json()) as Job).id);
    expect(job).toMatchObject({ status: "succeeded", input: { width: 120, height: 72, type: "gif" }, usage: { inputMp: 0.00864 } });
    expect(await download(job.outputs?.[0]?.url ?? "")).toMatchObject({ width: 240, height: 144 });
  });

  it("refuses a 2100x2100 JPEG at x2 at the edge, before any job, with the runner's own limit (image_too_large)", async () => {
    const { secret } = await newKey();
    const big = await sharp({ create: { width: 2100, height: 2100, channels: 3, background: { r: 30, g: 60, b: 90 } } }).jpeg().toBuffer();
    const response = await upscale(secret, big, "scales=2&format=png");
    expect(response.status).toBe(422);
    const problem = (await response.json()) as Record<string, unknown>;
    expect(problem).toMatchObject({ code: "image_too_large", maxInputPixels: 2 ** 22 });
    // No job was made: nothing was dispatched, reserved or billed.
    expect(problem.jobId).toBeUndefined();
    expect((await usageOf(secret)).quota).toMatchObject({ settledMp: 0, reservedMp: 0 });
  });

  it("refuses at the edge by the limits the runner reads from its model manifest (GET /v1/model)", async () => {
    const limits = await runnerLimits();
    const { secret } = await newKey();
    // One pixel wider than the runner takes at x1.
    const side = Math.floor(Math.sqrt(limits.maxInputPixels)) + 1;
    const header = await sharp({ create: { width: side, height: side, channels: 3, background: { r: 200, g: 10, b: 10 } } }).jpeg().toBuffer();
    const response = await upscale(secret, header, "scales=1&format=png");
    expect(response.status).toBe(422);
    expect(await response.json()).toMatchObject({ code: "image_too_large", maxInputPixels: limits.maxInputPixels });
    expect((await usageOf(secret)).quota).toMatchObject({ settledMp: 0, reservedMp: 0 });
  });

  it("reports a JPEG turned by its EXIF orientation upright, and its outputs are exactly that size times the scale", async () => {
    const { secret } = await newKey();
    const stored = await sharp({ create: { width: 48, height: 40, channels: 3, background: { r: 90, g: 140, b: 60 } } }).jpeg().toBuffer();
    const response = await upscale(secret, jpegWithExif(stored, exifTiff(6)), "scales=1,2&format=png");
    expect(response.status).toBe(202);
    const job = await untilDone(secret, ((await response.json()) as Job).id);
    expect(job).toMatchObject({ status: "succeeded", input: { width: 40, height: 48 } });
    expect(job.outputs?.map((o) => [o.scale, o.width, o.height])).toEqual([
      [1, 40, 48],
      [2, 80, 96],
    ]);
    expect(await download(job.outputs?.[1]?.url ?? "")).toMatchObject({ width: 80, height: 96 });
  });
});
