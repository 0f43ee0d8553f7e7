import { readFileSync } from "node:fs";
import { DEFAULT_CLEANUP, FINE_JPEG_CLEANUP } from "@hvar/contract";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { ImageThreads } from "../../gpu-runner/src/tiling/image-threads";
import { jpegQuality } from "../../gpu-runner/src/image/jpeg-quality";
import { NOISY_CLEANUP, NOISY_LEVEL, cleanupFor, noiseLevel } from "../../gpu-runner/src/image/noise";

// Written by `python -m hvar.noise --fixtures`: the images (PNG, and JPEG saved by Pillow at four
// qualities), and what model/hvar/noise.py reads in each.
const FIXTURES = new URL("./fixtures/noise/", import.meta.url);
const fixture = JSON.parse(readFileSync(new URL("levels.json", FIXTURES), "utf8")) as {
  rule: { noisyLevel: number; noisy: number; quiet: number; fineJpeg: [number, number][] };
  levels: Record<string, number>;
  jpegQualities: Record<string, number>;
};
const file = (name: string) => readFileSync(new URL(name, FIXTURES));

async function pixels(name: string) {
  const { data, info } = await sharp(new URL(`${name}.png`, FIXTURES).pathname).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { rgb: data, width: info.width, height: info.height };
}

describe("noiseLevel reads an image's noise as the model's evaluation does", () => {
  it.each(Object.entries(fixture.levels))("%s: the level model/hvar/noise.py reads", async (name, level) => {
    const { rgb, width, height } = await pixels(name);
    expect(noiseLevel(rgb, width, height)).toBeCloseTo(level, 4);
  });

  it("reads stripes of 50 levels as no noise: texture is not noise", async () => {
    const { rgb, width, height } = await pixels("stripes");
    expect(noiseLevel(rgb, width, height)).toBeLessThan(0.5);
  });

  it("reads an image under 7 px a side as noiseless", () => {
    expect(noiseLevel(new Uint8Array(6 * 40 * 3).fill(90), 40, 6)).toBe(0);
  });
});

describe("jpegQuality reads the quality a JPEG was saved at from its own table", () => {
  it.each(Object.entries(fixture.jpegQualities))("%s: the quality model/hvar/noise.py reads", (name, quality) => {
    expect(jpegQuality(file(name))).toBe(quality);
  });

  it.each([30, 75, 90, 95])("gives libjpeg's quality %i back for a JPEG sharp wrote at it", async (quality) => {
    const bytes = await sharp(file("stripes.png")).jpeg({ quality }).toBuffer();
    expect(jpegQuality(bytes)).toBe(quality);
  });

  it("has nothing to read in a PNG, or in a JPEG cut short before its table", () => {
    expect(jpegQuality(file("smooth.png"))).toBeUndefined();
    expect(jpegQuality(file("smooth-q90.jpg").subarray(0, 30))).toBeUndefined();
  });
});

describe("cleanup=auto", () => {
  it("applies the rule the evaluation measured", () => {
    const rule = { noisyLevel: NOISY_LEVEL, noisy: NOISY_CLEANUP, quiet: DEFAULT_CLEANUP, fineJpeg: FINE_JPEG_CLEANUP };
    expect(rule).toEqual(fixture.rule);
  });

  it("gives a photo that is not noisy and came as a JPEG of quality 90 or finer less clean-up, the finer the less, a coarser one the default", () => {
    expect([98, 95, 94, 90, 89].map((quality) => cleanupFor(0.5, quality))).toEqual([0.25, 0.25, 0.5, 0.5, DEFAULT_CLEANUP]);
    expect(cleanupFor(0.5)).toBe(DEFAULT_CLEANUP);
  });

  it("cleans a noisy photo fully whatever its JPEG quality", () => {
    expect(cleanupFor(NOISY_LEVEL + 1, 95)).toBe(NOISY_CLEANUP);
  });

  it("cleans a noisy photo fully", async () => {
    const { rgb, width, height } = await pixels("noise20");
    expect(cleanupFor(noiseLevel(rgb, width, height))).toBe(1);
  });

  it("gives a clean one the default strength", async () => {
    const { rgb, width, height } = await pixels("smooth");
    expect(cleanupFor(noiseLevel(rgb, width, height))).toBe(DEFAULT_CLEANUP);
  });

  it("reads the noise on an image thread as on the calling thread", async () => {
    const threads = new ImageThreads(1);
    for (const name of ["noise20", "smooth"]) {
      const { rgb, width, height } = await pixels(name);
      expect(await threads.noiseLevel(rgb, width, height)).toBe(noiseLevel(rgb, width, height));
    }
    await threads.close();
  });
});
