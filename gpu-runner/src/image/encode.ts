import type { OutputFormat } from "@hvar/contract";
import sharp, { type AvifOptions, type JpegOptions, type PngOptions, type Sharp, type WebpOptions } from "sharp";
import { encodeSlots } from "./encode-slots";

export interface EncodeInput {
  width: number;
  height: number;
  /** Interleaved 8-bit sRGB. */
  rgb: Buffer;
  /** One byte per pixel, re-attached as the fourth channel (flattened for JPEG, which has none). */
  alpha?: Buffer;
}

/** A sharp encoder and its options (quality apart, which the job gives). */
export type EncoderSettings =
  | { format: "png"; options: PngOptions }
  | { format: "webp"; options: WebpOptions }
  | { format: "avif"; options: AvifOptions }
  | { format: "jpeg"; options: JpegOptions };

/**
 * What each output format is encoded with; `npm run bench:encoders` sets them beside other efforts.
 * AVIF at sharp's default effort (4) encoded 1920x1080 at 0.4 MP/s on 2 cores, slower than the model
 * itself: effort 3 is 5-6x faster for files 9-13% larger at the same quality (bench/runner/README.md).
 */
export const ENCODERS: { [F in OutputFormat]: Extract<EncoderSettings, { format: F }> } = {
  png: { format: "png", options: { compressionLevel: 6 } },
  webp: { format: "webp", options: {} },
  avif: { format: "avif", options: { effort: 3 } },
  jpeg: { format: "jpeg", options: { mozjpeg: true } },
};

/**
 * The API's `quality` is JPEG's scale: a JPEG (mozjpeg) of that quality is the reference, and AVIF is
 * encoded at the quality whose fidelity is that JPEG's. libaom's scale is the odd one: at the same
 * number an AVIF was 1.2-3.6 dB (PSNR-Y) closer to the image than the JPEG between 20 and 90, in files
 * 0.55-0.75 of its size (sharp's own defaults, AVIF 50 against JPEG 80, say as much). Matched, an AVIF of
 * the API's default 85 is encoded at 71: in files 0.53 of the JPEG's and 0.7 of an AVIF at 85, within
 * 0.33 dB of the JPEG image by image (up to 1.6 dB at lower qualities). WebP keeps libwebp's scale,
 * 0.6-3.1 dB below JPEG's above 40: matched, its files would be larger than the JPEG's.
 * [API quality, AVIF quality], measured by `npm run bench:quality-scale` on the served model's x2 and x4
 * of the demo photos (bench/runner/README.md); linear between the points, the ends held beyond them.
 */
export const AVIF_QUALITY: readonly (readonly [number, number])[] = [
  [10, 1], [15, 1], [20, 8], [25, 15], [30, 20], [35, 26], [40, 29], [45, 32], [50, 35], [55, 38],
  [60, 40], [65, 44], [70, 47], [75, 54], [80, 61], [85, 71], [90, 84], [95, 94], [100, 99],
];

/** The AVIF quality for an API quality: linear between AVIF_QUALITY's points. */
export function avifQuality(quality: number): number {
  type Point = readonly [number, number];
  const above = AVIF_QUALITY.findIndex(([q]) => q >= quality);
  if (above === 0) return (AVIF_QUALITY[0] as Point)[1];
  if (above === -1) return (AVIF_QUALITY.at(-1) as Point)[1];
  const [[q0, a0], [q1, a1]] = [AVIF_QUALITY[above - 1] as Point, AVIF_QUALITY[above] as Point];
  return Math.round(a0 + ((quality - q0) / (q1 - q0)) * (a1 - a0));
}

/**
 * Encodes to the requested format. Metadata (EXIF, XMP, ICC) is never copied: sharp writes none
 * unless asked, and the pixels are already sRGB, the format's default interpretation.
 */
export async function encodeImage(image: EncodeInput, format: OutputFormat, quality: number): Promise<Buffer> {
  return encodeSlots(() => encode(pipelineOf(image, format), format, quality));
}

/** The image with its alpha, as `format` takes it. */
function pipelineOf({ width, height, rgb, alpha }: EncodeInput, format: OutputFormat): Sharp {
  const raw = (channels: 1 | 3) => ({ raw: { width, height, channels } });
  if (!alpha) return sharp(rgb, raw(3));
  // JPEG has no alpha: a transparent image flattened onto white reads better than onto black. Here, as
  // sharp flattens before it joins a band.
  if (format === "jpeg") return sharp(flattenOntoWhite(rgb, alpha), raw(3));
  // libvips joins the alpha band strip by strip as it encodes: no RGBA copy of the whole image (256 MB at
  // the largest x4, which put the largest job's peak 7% over its estimate: bench/runner/job-memory.ts).
  return sharp(rgb, raw(3)).joinChannel(alpha, raw(1));
}

function encode(pipeline: Sharp, format: OutputFormat, quality: number): Promise<Buffer> {
  switch (format) {
    case "png":
      return pipeline.png(ENCODERS.png.options).toBuffer();
    case "webp":
      return pipeline.webp({ ...ENCODERS.webp.options, quality }).toBuffer();
    case "avif":
      return pipeline.avif({ ...ENCODERS.avif.options, quality: avifQuality(quality) }).toBuffer();
    case "jpeg":
      return pipeline.jpeg({ ...ENCODERS.jpeg.options, quality }).toBuffer();
  }
}

/** Each pixel over white by its alpha (rounded as libvips' flatten). */
function flattenOntoWhite(rgb: Buffer, alpha: Buffer): Buffer {
  const out = Buffer.allocUnsafe(rgb.length);
  for (let i = 0; i < alpha.length; i++) {
    const a = alpha[i] as number;
    for (let c = 3 * i; c < 3 * i + 3; c++) out[c] = Math.round(((rgb[c] as number) * a + 255 * (255 - a)) / 255);
  }
  return out;
}
