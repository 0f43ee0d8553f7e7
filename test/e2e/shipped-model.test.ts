import { modelName } from "@hvar/contract";
import sharp from "sharp";
import { describe, expect, inject, it } from "vitest";
import { servedModel } from "../../scripts/stack";
import { type Job, example, newKey, stack, untilDone, upscale } from "./helpers";
import { SHIPPED } from "./setup";

/**
 * The model that ships (gpu-runner/models, what `npm start` serves) end to end, through the public
 * API: a small real photo upscaled to x1, x2 and x4, the signed URLs downloaded and decoded at their
 * sizes, and each output checked against the input. Project `e2e-shipped` (vitest.shipped.config.ts):
 * its stack is its own, started by setup.shipped.ts. Without a usable model there, it fails.
 *
 * The check against the input: an output shrunk back to the input's size (sharp, lanczos3) must be
 * close to the input, as any super-resolution of it is. Measured on 48x40 crops of the four example
 * photos with hvar-base 0.0.1-wip (an early checkpoint): x2 and x4 37.3-40.9 dB, x1 (cleaned, so
 * further from its input) 30.5-35.3 dB. Outputs that are trivially wrong score far lower on the same
 * crops: black 3.9-7.5, mid-grey 8.1-14.5, the input's mean colour 9.9-16.2, noise 6.3-9.3, mirrored
 * 8.4-15.2, shifted by 4 px 9.6-14.1, red and blue swapped 12.8-15.6, half as bright 9.9-13.5, even
 * a Gaussian blur of sigma 3 19.1-24.7 dB.
 */
const MIN_PSNR_DB: Record<number, number> = { 1: 20, 2: 25, 4: 25 };
/** The cat's eye and fur in chelsea.jpg (256x170): detail, few tiles (4 of 32 px at the model's T/4 overlap). */
const CROP = { left: 100, top: 40, width: 48, height: 40 };

/** PSNR (dB) of two 8-bit buffers of the same length. */
function psnr(a: Buffer, b: Buffer): number {
  expect(a.length).toBe(b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += ((a[i] as number) - (b[i] as number)) ** 2;
  return 10 * Math.log10((255 * 255) / Math.max(sum / a.length, 1e-10));
}

/** The image as raw RGB at width x height (resized with lanczos3 when it is not that size already). */
async function rgb(image: Buffer, width: number, height: number): Promise<Buffer> {
  return sharp(image).removeAlpha().toColourspace("srgb").resize(width, height, { fit: "fill", kernel: "lanczos3" }).raw().toBuffer();
}

describe("the shipped model (gpu-runner/models), end to end", () => {
  const stackError = inject("stackError");

  it("is what the stack serves", async () => {
    if (stackError) throw new Error(stackError);
    const shipped = await servedModel(SHIPPED);
    expect(shipped, "no usable model in gpu-runner/models").not.toBeNull();
    expect(stack.model).toBe(shipped);
    const ready = (await (await fetch(`${stack.runnerUrl}/readyz`)).json()) as { status: string; models: { id: string; version: string }[] };
    expect(ready.status).toBe("ready");
    expect(ready.models.map(modelName)).toContain(shipped);
  });

  it("upscales a real photo: three signed URLs that decode at x1, x2 and x4, each close to the input when shrunk back", async () => {
    if (stackError) throw new Error(stackError);
    const { secret } = await newKey();
    const input = await sharp(await example("chelsea")).extract(CROP).png().toBuffer();
    const { width, height } = CROP;

    const response = await upscale(secret, input, "scales=1,2,4&format=png", { prefer: "wait=60" });
    if (response.status !== 200 && response.status !== 202) throw new Error(`POST /v1/upscales: ${response.status} ${await response.text()}`);
    let job = (await response.json()) as Job;
    // The model may be slower than the wait on a busy CPU: then the job is polled as any client would.
    if (response.status === 202) job = await untilDone(secret, job.id, 240_000);
    expect(job.status, JSON.stringify(job.error)).toBe("succeeded");
    expect(job.model && modelName(job.model)).toBe(stack.model);
    expect(job.input).toMatchObject({ width, height, type: "png" });

    const outputs = job.outputs ?? [];
    expect(outputs.map((o) => o.scale)).toEqual([1, 2, 4]);
    const reference = await rgb(input, width, height);
    const scores: string[] = [];
    for (const output of outputs) {
      const s = output.scale;
      expect([output.width, output.height]).toEqual([width * s, height * s]);
      const download = await fetch(output.url);
      expect(download.status, `GET ${output.url}`).toBe(200);
      expect(download.headers.get("content-type")).toBe("image/png");
      const bytes = Buffer.from(await download.arrayBuffer());
      const meta = await sharp(bytes).metadata();
      expect({ format: meta.format, width: meta.width, height: meta.height }).toEqual({ format: "png", width: width * s, height: height * s });

      const score = psnr(reference, await rgb(bytes, width, height));
      scores.push(`x${s} ${score.toFixed(1)} dB`);
      // Soft: one broken scale still shows the scores of the others.
      expect.soft(score, `x${s} shrunk to ${width}x${height} vs the input: PSNR (dB), at least ${MIN_PSNR_DB[s]}`).toBeGreaterThan(MIN_PSNR_DB[s] as number);
    }
    console.info(`${stack.model}, ${width}x${height} crop of chelsea.jpg, outputs shrunk back vs the input: ${scores.join(", ")}`);
  });
});
