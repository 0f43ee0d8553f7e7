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
 * Encodes to the requested format. Metadata (EXIF, XMP, ICC) is never copied: sharp writes none
 * unless asked, and the pixels are already sRGB, the format's default interpretation.
 */
export async function encodeImage(image: EncodeInput, format: OutputFormat, quality: number): Promise<Buffer> {
  const { width, height, alpha } = image;
  const pixels = alpha ? interleaveAlpha(image.rgb, alpha, width * height) : image.rgb;
  const pipeline = sharp(pixels, { raw: { width, height, channels: alpha ? 4 : 3 } });
  return encodeSlots(() => encode(pipeline, format, alpha !== undefined, quality));
}

function encode(pipeline: Sharp, format: OutputFormat, alpha: boolean, quality: number): Promise<Buffer> {
  switch (format) {
    case "png":
      return pipeline.png(ENCODERS.png.options).toBuffer();
    case "webp":
      return pipeline.webp({ ...ENCODERS.webp.options, quality }).toBuffer();
    case "avif":
      return pipeline.avif({ ...ENCODERS.avif.options, quality }).toBuffer();
    case "jpeg":
      // JPEG has no alpha: a transparent image flattened onto white reads better than onto black.
      return (alpha ? pipeline.flatten({ background: "#ffffff" }) : pipeline).jpeg({ ...ENCODERS.jpeg.options, quality }).toBuffer();
  }
}

function interleaveAlpha(rgb: Buffer, alpha: Buffer, pixels: number): Buffer {
  const rgba = Buffer.allocUnsafe(pixels * 4);
  for (let i = 0; i < pixels; i++) {
    rgba[i * 4] = rgb[i * 3] as number;
    rgba[i * 4 + 1] = rgb[i * 3 + 1] as number;
    rgba[i * 4 + 2] = rgb[i * 3 + 2] as number;
    rgba[i * 4 + 3] = alpha[i] as number;
  }
  return rgba;
}
