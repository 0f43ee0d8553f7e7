import type { OutputFormat } from "@hvar/contract";
import sharp from "sharp";

export interface EncodeInput {
  width: number;
  height: number;
  /** Interleaved 8-bit sRGB. */
  rgb: Buffer;
  /** One byte per pixel, re-attached as the fourth channel (flattened for JPEG, which has none). */
  alpha?: Buffer;
}

/**
 * Encodes to the requested format. Metadata (EXIF, XMP, ICC) is never copied: sharp writes none
 * unless asked, and the pixels are already sRGB, the format's default interpretation.
 */
export async function encodeImage(image: EncodeInput, format: OutputFormat, quality: number): Promise<Buffer> {
  const { width, height, alpha } = image;
  const pixels = alpha ? interleaveAlpha(image.rgb, alpha, width * height) : image.rgb;
  const pipeline = sharp(pixels, { raw: { width, height, channels: alpha ? 4 : 3 } });
  switch (format) {
    case "png":
      return pipeline.png({ compressionLevel: 6 }).toBuffer();
    case "webp":
      return pipeline.webp({ quality }).toBuffer();
    case "avif":
      return pipeline.avif({ quality }).toBuffer();
    case "jpeg":
      // JPEG has no alpha: a transparent image flattened onto white reads better than onto black.
      return (alpha ? pipeline.flatten({ background: "#ffffff" }) : pipeline).jpeg({ quality, mozjpeg: true }).toBuffer();
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
