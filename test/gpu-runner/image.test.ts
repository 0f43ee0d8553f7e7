import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { setImmediate } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { crc32 } from "node:zlib";
import { DEFAULT_QUALITY, DomainError, ENCODING_VERSION, toProblem } from "@hvar/contract";
import sharp, { type Color } from "sharp";
import { describe, expect, it } from "vitest";
import { decodeImage } from "../../gpu-runner/src/image/decode";
import { AVIF_QUALITY, ENCODERS, avifQuality, encodeImage } from "../../gpu-runner/src/image/encode";
import { encodeSlots, UV_THREADS } from "../../gpu-runner/src/image/encode-slots";
import { psnrY } from "../../bench/runner/quality";
import { pattern, rawImage } from "./helpers";

const limits = { maxPixels: 1_000_000 };
/** A CC0 photo of the demo page's (worker/public/demo/examples/LICENSE.txt). */
const DEMO_PHOTO = fileURLToPath(new URL("../../worker/public/demo/examples/chelsea.jpg", import.meta.url));
const red = { r: 200, g: 30, b: 20 };

/** The problem+json body the runner answers when `bytes` are refused. */
async function problemOf(bytes: Buffer, options = limits) {
  const error: unknown = await decodeImage(bytes, options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DomainError);
  return toProblem(error as DomainError).body;
}

/** Rewrites a PNG's IHDR dimensions (and its CRC), as a decompression bomb's header would read. */
function withPngSize(png: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(png);
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  out.writeUInt32BE(crc32(out.subarray(12, 29)), 29);
  return out;
}

function solid(width: number, height: number, channels: 3 | 4 = 3, background: Color = red) {
  return sharp({ create: { width, height, channels, background } });
}

describe("decodeImage refuses bad input with a clear 4xx", () => {
  it("empty body → 400 image_empty", async () => {
    expect(await problemOf(Buffer.alloc(0))).toMatchObject({ status: 400, code: "image_empty" });
  });

  it("text that is not an image → 415 image_unsupported_type", async () => {
    expect(await problemOf(Buffer.from("<html><body>definitely not a picture</body></html>"))).toMatchObject({ status: 415, code: "image_unsupported_type" });
  });

  it("a format libvips knows but the runner does not serve (SVG) → 415", async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
    expect(await problemOf(svg)).toMatchObject({ status: 415, code: "image_unsupported_type" });
  });

  it("a truncated PNG → 422 image_corrupt", async () => {
    const png = await rawImage(64, 64, (x, y) => [x * 4, y * 4, (x * y) % 256]).png().toBuffer();
    expect(await problemOf(png.subarray(0, Math.floor(png.length / 2)))).toMatchObject({ status: 422, code: "image_corrupt" });
  });

  it("a truncated JPEG → 422 image_corrupt", async () => {
    const jpeg = await rawImage(64, 64, (x, y) => [x * 4, y * 4, (x * y) % 256]).jpeg().toBuffer();
    expect(await problemOf(jpeg.subarray(0, Math.floor(jpeg.length / 2)))).toMatchObject({ status: 422, code: "image_corrupt" });
  });

  it("a header cut before its dimensions → 4xx, not a crash", async () => {
    const png = await solid(8, 8).png().toBuffer();
    expect((await problemOf(png.subarray(0, 20))).status).toBeGreaterThanOrEqual(400);
  });

  it("corrupt bytes after a valid signature → 4xx", async () => {
    const png = await solid(32, 32).png().toBuffer();
    const garbled = Buffer.concat([png.subarray(0, 16), Buffer.alloc(png.length - 16, 0xab)]);
    const problem = await problemOf(garbled);
    expect(problem.status).toBeGreaterThanOrEqual(400);
    expect(problem.status).toBeLessThan(500);
  });

  it("dimensions over the pixel limit → 422 image_too_large (as the worker says it), judged from the header", async () => {
    // A real 1x1 PNG whose header claims 20000 x 20000: decoding it would mean 1.2 GB of pixels.
    const bomb = withPngSize(await solid(1, 1).png().toBuffer(), 20_000, 20_000);
    const problem = await problemOf(bomb);
    expect(problem).toMatchObject({ status: 422, code: "image_too_large" });
    expect(problem.title).toContain("20000x20000");
  });

  it("animated input is refused with 422 when the option says so", async () => {
    const frames = Buffer.concat([Buffer.alloc(8 * 8 * 4, 255), Buffer.alloc(8 * 8 * 4, 0)]);
    const gif = await sharp(frames, { raw: { width: 8, height: 16, channels: 4, pageHeight: 8 } }).gif().toBuffer();
    expect(await problemOf(gif, { ...limits, animated: "reject" } as typeof limits)).toMatchObject({ status: 422, code: "image_animated" });
  });
});

describe("decodeImage normalises to 8-bit sRGB", () => {
  it("takes the first frame of an animation by default", async () => {
    const frames = Buffer.concat([Buffer.from(new Array(64).fill([255, 0, 0, 255]).flat()), Buffer.from(new Array(64).fill([0, 0, 255, 255]).flat())]);
    const gif = await sharp(frames, { raw: { width: 8, height: 16, channels: 4, pageHeight: 8 } }).gif().toBuffer();
    const image = await decodeImage(gif, limits);
    expect([image.width, image.height]).toEqual([8, 8]);
    expect([...image.rgb.subarray(0, 3)]).toEqual([255, 0, 0]);
  });

  it("converts a CMYK JPEG to RGB close to the original colour", async () => {
    const cmyk = await solid(16, 16).jpeg({ quality: 95 }).toColourspace("cmyk").toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe("cmyk");
    const image = await decodeImage(cmyk, limits);
    expect(image.rgb.length).toBe(16 * 16 * 3);
    const [r, g, b] = image.rgb;
    expect(Math.abs((r as number) - red.r)).toBeLessThan(24);
    expect(Math.abs((g as number) - red.g)).toBeLessThan(24);
    expect(Math.abs((b as number) - red.b)).toBeLessThan(24);
  });

  it("expands a greyscale PNG to three equal channels", async () => {
    const grey = await rawImage(8, 8, (x) => [x * 30, x * 30, x * 30]).toColourspace("b-w").png().toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const image = await decodeImage(grey, limits);
    expect(image.rgb.length).toBe(8 * 8 * 3);
    expect([...image.rgb.subarray(3 * 5, 3 * 6)]).toEqual([150, 150, 150]);
  });

  it("reduces a 16-bit PNG to 8 bits per channel", async () => {
    const png16 = await solid(8, 8).toColourspace("rgb16").png().toBuffer();
    expect((await sharp(png16).metadata()).depth).toBe("ushort");
    const image = await decodeImage(png16, limits);
    expect(image.rgb.length).toBe(8 * 8 * 3);
    expect([...image.rgb.subarray(0, 3)]).toEqual([200, 30, 20]);
  });

  it("reduces a 16-bit greyscale PNG to 8-bit RGB", async () => {
    const grey16 = await solid(8, 8).toColourspace("grey16").png().toBuffer();
    const image = await decodeImage(grey16, limits);
    expect(image.rgb.length).toBe(8 * 8 * 3);
    expect(image.rgb[0]).toBe(image.rgb[1]);
  });

  it("applies an embedded ICC profile (Display P3) instead of reading the numbers as sRGB", async () => {
    // sharp converts sRGB (200, 100, 50) into P3 numbers when it attaches the profile.
    const p3 = await solid(8, 8, 3, { r: 200, g: 100, b: 50 }).withIccProfile("p3").png().toBuffer();
    const stored = await sharp(p3, { ignoreIcc: true }).raw().toBuffer();
    expect(Math.abs((stored[0] as number) - 200)).toBeGreaterThan(8);
    const image = await decodeImage(p3, limits);
    [200, 100, 50].forEach((want, c) => expect(Math.abs((image.rgb[c] as number) - want)).toBeLessThanOrEqual(2));
  });

  it("applies EXIF orientation (6: rotate 90° clockwise), swapping width and height", async () => {
    // Left half red, right half blue; after a 90° clockwise turn the top half is red, the bottom blue.
    const jpeg = await rawImage(32, 16, (x) => (x < 16 ? [255, 0, 0] : [0, 0, 255])).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    const image = await decodeImage(jpeg, limits);
    expect([image.width, image.height]).toEqual([16, 32]);
    const at = (x: number, y: number) => [...image.rgb.subarray((y * 16 + x) * 3, (y * 16 + x) * 3 + 3)];
    expect(at(8, 4)[0]).toBeGreaterThan(200);
    expect(at(8, 28)[2]).toBeGreaterThan(200);
  });

  it("splits off a non-opaque alpha channel", async () => {
    const rgba = await solid(4, 4, 4, { r: 10, g: 20, b: 30, alpha: 0.5 }).png().toBuffer();
    const image = await decodeImage(rgba, limits);
    expect(image.rgb.length).toBe(4 * 4 * 3);
    expect([...image.rgb.subarray(0, 3)]).toEqual([10, 20, 30]);
    expect(image.alpha?.length).toBe(16);
    expect(image.alpha?.[0]).toBe(128);
  });

  it("drops an alpha channel that is fully opaque", async () => {
    const image = await decodeImage(await solid(4, 4, 4, { r: 10, g: 20, b: 30, alpha: 1 }).png().toBuffer(), limits);
    expect(image.alpha).toBeUndefined();
  });

  it("keeps the alpha of a grey + alpha PNG", async () => {
    const ga = await solid(4, 4, 4, { r: 90, g: 90, b: 90, alpha: 0.25 }).toColourspace("b-w").png().toBuffer();
    const image = await decodeImage(ga, limits);
    expect([...image.rgb.subarray(0, 3)]).toEqual([90, 90, 90]);
    expect(image.alpha?.[0]).toBe(64);
  });
});

describe("encodeImage", () => {
  const rgb = Buffer.alloc(8 * 8 * 3, 100);

  it.each([
    ["png", "png"],
    ["webp", "webp"],
    ["avif", "heif"],
    ["jpeg", "jpeg"],
  ] as const)("writes %s", async (format, detected) => {
    const bytes = await encodeImage({ width: 8, height: 8, rgb }, format, 80);
    const metadata = await sharp(bytes).metadata();
    expect(metadata.format).toBe(detected);
    expect([metadata.width, metadata.height]).toEqual([8, 8]);
  });

  it("strips metadata: no EXIF, no ICC profile", async () => {
    const metadata = await sharp(await encodeImage({ width: 8, height: 8, rgb }, "jpeg", 90)).metadata();
    expect(metadata.exif).toBeUndefined();
    expect(metadata.icc).toBeUndefined();
  });

  it("lower quality gives fewer bytes for a lossy format", async () => {
    const noisy = Buffer.from(Array.from({ length: 64 * 64 * 3 }, (_, i) => (i * 7919) % 256));
    const low = await encodeImage({ width: 64, height: 64, rgb: noisy }, "webp", 10);
    const high = await encodeImage({ width: 64, height: 64, rgb: noisy }, "webp", 95);
    expect(low.length).toBeLessThan(high.length);
  });

  it.each([60, 85])("gives an AVIF of quality %i about the fidelity of a JPEG of that quality (the API's scale is JPEG's)", async (quality) => {
    const { data, info } = await sharp(DEMO_PHOTO).resize(480, 270, { fit: "cover" }).resize(960, 540, { kernel: "lanczos3" }).raw().toBuffer({ resolveWithObject: true });
    const image = { width: info.width, height: info.height, rgb: data };
    const fidelity = async (format: "avif" | "jpeg") => psnrY(data, await sharp(await encodeImage(image, format, quality)).raw().toBuffer(), info.width, info.height, 0);
    const [avif, jpeg] = [await fidelity("avif"), await fidelity("jpeg")];
    // Within the spread from image to image of bench:quality-scale (±1.2 dB); at libaom's own scale an AVIF was 2-3.5 dB closer.
    expect(Math.abs(avif - jpeg), `AVIF ${avif.toFixed(2)} dB, JPEG ${jpeg.toFixed(2)} dB`).toBeLessThan(1.25);
  });

  it("maps the API's quality to AVIF's in order, within the encoder's range, the default 85 to 71", () => {
    const mapped = Array.from({ length: 100 }, (_, i) => avifQuality(i + 1));
    expect(mapped.every((q, i) => q >= 1 && q <= 100 && (i === 0 || q >= (mapped[i - 1] as number)))).toBe(true);
    expect(avifQuality(DEFAULT_QUALITY)).toBe(71);
  });

  it("has the encoding version the result cache keys on: settings that change the files change ENCODING_VERSION", () => {
    const fingerprint = createHash("sha256").update(JSON.stringify({ ENCODERS, AVIF_QUALITY })).digest("hex").slice(0, 16);
    // When this fails, cached results were made by other settings: add one to ENCODING_VERSION in
    // packages/contract/src/vocabulary.ts and record the new pair here.
    expect({ ENCODING_VERSION, fingerprint }).toEqual({ ENCODING_VERSION: 2, fingerprint: "90bd7bd81e4d239a" });
  });

  const noisy = (side: number) => ({ width: side, height: side, rgb: Buffer.from(Array.from({ length: side * side * 3 }, (_, i) => (i * 7919) % 251)) });

  it("encodes at most as many images at once as libuv has threads, less two", async () => {
    const image = noisy(512);
    const encodes = Array.from({ length: UV_THREADS + 3 }, () => encodeImage(image, "avif", 85));
    await setImmediate();
    expect([encodeSlots.activeCount, encodeSlots.pendingCount]).toEqual([UV_THREADS - 2, 5]);
    await Promise.all(encodes);
  }, 30_000);

  it("leaves libuv's threads for a file read while more images are encoded than it has threads", async () => {
    const image = noisy(512);
    const order: string[] = [];
    const encodes = Array.from({ length: UV_THREADS + 2 }, () => encodeImage(image, "avif", 85).then(() => order.push("encoded")));
    await readFile(new URL(import.meta.url)).then(() => order.push("file read"));
    await Promise.all(encodes);
    expect(order[0]).toBe("file read");
  }, 30_000);

  it("re-attaches alpha in PNG and flattens it onto white in JPEG", async () => {
    const alpha = Buffer.alloc(64, 0);
    const png = await sharp(await encodeImage({ width: 8, height: 8, rgb, alpha }, "png", 90)).raw().toBuffer({ resolveWithObject: true });
    expect(png.info.channels).toBe(4);
    expect(png.data[3]).toBe(0);
    const jpeg = await sharp(await encodeImage({ width: 8, height: 8, rgb, alpha }, "jpeg", 90)).raw().toBuffer();
    expect(jpeg[0]).toBeGreaterThan(245);
  });

  it("flattens partial alpha onto white in JPEG as sharp's flatten does", async () => {
    const [width, height] = [16, 16];
    const rgb = pattern(width, height, (x, y) => [(x * 16) % 256, (y * 16) % 256, 90]);
    const alpha = Buffer.from(Array.from({ length: width * height }, (_, i) => (i * 37) % 256));
    const rgba = Buffer.alloc(width * height * 4);
    for (let i = 0; i < width * height; i++) {
      rgb.copy(rgba, i * 4, i * 3, i * 3 + 3);
      rgba[i * 4 + 3] = alpha[i] as number;
    }
    const sharps = await sharp(rgba, { raw: { width, height, channels: 4 } }).flatten({ background: "#ffffff" }).jpeg({ mozjpeg: true, quality: 100 }).toBuffer();
    const ours = await encodeImage({ width, height, rgb, alpha }, "jpeg", 100);
    const [a, b] = [await sharp(ours).raw().toBuffer(), await sharp(sharps).raw().toBuffer()];
    // A few levels are JPEG's own (4:2:0 at quality 100); onto black, or alpha ignored, would be tens.
    expect(Math.max(...a.map((v, i) => Math.abs(v - (b[i] as number))))).toBeLessThanOrEqual(6);
  });
});
