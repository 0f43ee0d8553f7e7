import { describe, expect, it } from "vitest";
import { exifTiff, gif, jpegWithExif } from "../fixtures/crafted-images";
import { fixtures } from "./fixtures/images";
import { jobCount, ledgerOf, meterOf, newKey, upscale } from "./helpers";

interface Job {
  id: string;
  status: string;
  input: { width: number; height: number; type: string; megapixels: number };
  outputs?: { scale: number; width: number; height: number }[];
  usage: { inputMp: number };
}

/**
 * Billing and limits follow the pixels the runner's decoder will process, whatever a header claims
 * (the sizes themselves are specified in sniff.test.ts). The runner stub reports the size the worker
 * declared with the job, as a real runner does once it has checked it.
 */
describe("billing and limits by the pixels that will be processed", () => {
  it("limits a GIF by its first frame, not by the 1x1 logical screen it declares", async () => {
    const { key, secret } = await newKey();
    const crafted = gif({ width: 1, height: 1 }, [{ width: 1500, height: 1500 }]);
    const response = await upscale(secret, crafted, { query: "scales=1", headers: { "content-type": "image/gif" } });
    expect(response.status).toBe(422);
    expect(await response.json()).toMatchObject({ code: "image_too_large" });
    expect(await jobCount(key.id)).toBe(0);
  });

  it("refuses a GIF whose frame, not its screen, is over the quota with 429", async () => {
    const { key, secret } = await newKey({ monthlyQuotaMp: 0.01 });
    const crafted = gif({ width: 1, height: 1 }, [{ width: 300, height: 200 }]);
    const response = await upscale(secret, crafted, { query: "scales=1", headers: { "content-type": "image/gif" } });
    expect(response.status).toBe(429);
    expect(await response.json()).toMatchObject({ code: "quota_exceeded" });
    expect(await meterOf(key.id).usage()).toMatchObject({ reservedMp: 0, settledMp: 0 });
  });

  it("bills a GIF by its frame and reports that size", async () => {
    const { key, secret } = await newKey();
    const crafted = gif({ width: 1, height: 1 }, [{ width: 200, height: 150 }]);
    const job = await (await upscale(secret, crafted, { query: "scales=1,2", headers: { "content-type": "image/gif" } })).json<Job>();
    expect(job).toMatchObject({ status: "succeeded", input: { width: 200, height: 150, megapixels: 0.03 }, usage: { inputMp: 0.03 } });
    expect(await ledgerOf(key.id)).toEqual([{ job_id: job.id, input_mp: 0.03, cache_hit: 0 }]);
  });

  it("reports a JPEG's upright size, and its outputs are exactly that size times the scale", async () => {
    const { secret } = await newKey();
    const turned = jpegWithExif(fixtures.jpegBaseline, exifTiff(6));
    const job = await (await upscale(secret, turned, { query: "scales=2,4", headers: { "content-type": "image/jpeg" } })).json<Job>();
    expect(job).toMatchObject({ status: "succeeded", input: { width: 30, height: 40, type: "jpeg" } });
    expect(job.outputs?.map((o) => [o.scale, o.width, o.height])).toEqual([
      [2, 60, 80],
      [4, 120, 160],
    ]);
  });
});
