import sharp, { type Color, type Sharp } from "sharp";
import { describe, expect, it } from "vitest";
import { decodeImage } from "../../gpu-runner/src/image/decode";
import { Scheduler } from "../../gpu-runner/src/scheduler/scheduler";
import { UpscaleTask } from "../../gpu-runner/src/tiling/task";
import { nearestModel, rawImage } from "./helpers";

// The inputs the issue names, end to end (decode, tiling, model, blend, alpha, encode) with a
// per-pixel model, so the expected output is known exactly: each input pixel repeated 2x2.

const solid = (width: number, height: number, channels: 3 | 4, background: Color): Sharp => sharp({ create: { width, height, channels, background } });

async function x2Of(bytes: Buffer) {
  const image = await decodeImage(bytes, { maxPixels: 1_000_000 });
  const task = await UpscaleTask.create(image, { scales: [2], tile: 16, overlap: 4, temperature: 0 });
  await new Scheduler(nearestModel(16), { batchSize: 4, memoryBudgetBytes: 1 << 30, maxQueuedTiles: 1000 }).submit(task);
  const [png] = await task.encode("png", 90);
  return sharp(png?.bytes).raw().toBuffer({ resolveWithObject: true });
}

const pixel = (data: Buffer, width: number, channels: number, x: number, y: number) => [...data.subarray((y * width + x) * channels, (y * width + x + 1) * channels)];

describe("inputs of every kind come out upscaled and correct", () => {
  it("CMYK JPEG → sRGB colour kept", async () => {
    const { data, info } = await x2Of(await solid(40, 30, 3, { r: 40, g: 160, b: 90 }).jpeg({ quality: 95 }).toColourspace("cmyk").toBuffer());
    expect([info.width, info.height, info.channels]).toEqual([80, 60, 3]);
    pixel(data, 80, 3, 40, 30).forEach((v, c) => expect(Math.abs(v - ([40, 160, 90][c] as number))).toBeLessThan(24));
  });

  it("greyscale PNG → grey RGB", async () => {
    const { data, info } = await x2Of(await rawImage(40, 30, (x) => [x * 6, x * 6, x * 6]).toColourspace("b-w").png().toBuffer());
    expect([info.width, info.height]).toEqual([80, 60]);
    expect(pixel(data, 80, 3, 21, 9)).toEqual([60, 60, 60]);
  });

  it("16-bit PNG → the same colour in 8 bits", async () => {
    const { data, info } = await x2Of(await solid(40, 30, 3, { r: 250, g: 128, b: 3 }).toColourspace("rgb16").png().toBuffer());
    expect([info.width, info.height]).toEqual([80, 60]);
    expect(pixel(data, 80, 3, 79, 59)).toEqual([250, 128, 3]);
  });

  it("PNG with alpha → alpha upscaled and re-attached", async () => {
    const { data, info } = await x2Of(await solid(40, 30, 4, { r: 200, g: 10, b: 10, alpha: 0.5 }).png().toBuffer());
    expect([info.width, info.height, info.channels]).toEqual([80, 60, 4]);
    expect(pixel(data, 80, 4, 40, 30)).toEqual([200, 10, 10, 128]);
  });

  it("EXIF-rotated JPEG (orientation 8) → upright output with swapped dimensions", async () => {
    // Stored 40x30 with its top half red; orientation 8 says "display turned 90° counter-clockwise",
    // which makes it 30x40 with the red half on the left.
    const jpeg = await rawImage(40, 30, (_x, y) => (y < 15 ? [255, 0, 0] : [0, 0, 255])).jpeg({ quality: 95 }).withMetadata({ orientation: 8 }).toBuffer();
    const { data, info } = await x2Of(jpeg);
    expect([info.width, info.height]).toEqual([60, 80]);
    const left = pixel(data, 60, 3, 10, 40);
    const right = pixel(data, 60, 3, 50, 40);
    expect([left[0] as number > 200, right[2] as number > 200]).toEqual([true, true]);
  });
});
