import { describe, expect, it } from "vitest";
import type { Upscale } from "../../packages/client/src/index.js";
import { renderJob } from "../../packages/cli/src/render.js";

const job = (cleanup: number | "auto", cleanupApplied?: number): Upscale => ({
  id: "j_1",
  status: "succeeded",
  createdAt: "2026-12-05T07:00:00.000Z",
  model: { id: "hvar", version: "2.8.0-floor" },
  options: { scales: [2], format: "png", quality: null, temperature: 0, cleanup },
  ...(cleanupApplied === undefined ? {} : { cleanupApplied }),
  input: { width: 40, height: 30, type: "png", megapixels: 0.0012 },
  usage: { inputMp: 0.0012, cacheHit: false, billable: true, billedMp: 0.0012 },
});

describe("a job as hvar prints it", () => {
  it("shows the clean-up asked for, and the strength auto chose for the image", () => {
    expect(renderJob(job("auto", 1))).toContain("  options scales 2, png, clean-up auto (1), model hvar 2.8.0-floor\n");
  });

  it("shows a strength asked for as it is", () => {
    expect(renderJob(job(0.3, 0.3))).toContain(", clean-up 0.3, model");
  });
});
