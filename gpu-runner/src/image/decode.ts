import { DomainError, type ImageSize, imageSizeSchema } from "@hvar/contract";
import sharp, { type Metadata, type OutputInfo } from "sharp";
import { z } from "zod";
import { jpegQuality } from "./jpeg-quality";

/** Formats the runner accepts: what the worker's sniffing lets through, decoded by libvips. */
const ACCEPTED = new Set(["jpeg", "png", "webp", "avif", "heif", "gif", "tiff"]);

export const DecodeOptionsSchema = z.object({
  /** Checked against the header before any pixel is decoded: the decompression-bomb guard. */
  maxPixels: z.number().int().positive(),
  /** `first` decodes the first frame of an animation; `reject` refuses animations with 422. */
  animated: z.enum(["first", "reject"]).default("first"),
  /**
   * The size the caller declared (the worker bills and limits by it): an image that decodes to any
   * other size is refused with 422 `image_size_mismatch`, judged from the header before any pixel is
   * decoded, and checked again on the decoded pixels.
   */
  expected: imageSizeSchema.optional(),
});
export type DecodeOptions = z.input<typeof DecodeOptionsSchema>;

/** An image as the model sees it: 8-bit sRGB, interleaved RGB, with its alpha kept aside. */
export interface DecodedImage {
  width: number;
  height: number;
  /** `width * height * 3` bytes, row-major, interleaved R, G, B. */
  rgb: Buffer;
  /** `width * height` bytes when the input had an alpha channel that is not fully opaque. */
  alpha?: Buffer;
  /** The container format libvips found (`jpeg`, `png`, ...), for logs and metrics. */
  format: string;
  /** A JPEG's quality, read from its quantization table (jpeg-quality.ts): what `cleanup=auto` goes by. */
  jpegQuality?: number;
}

/** What an image's header says, once it has passed every check that needs no pixel. */
export interface ImageHeader {
  width: number;
  height: number;
  format: string;
}

/**
 * The checks that read the header only, in order: not empty, a decodable format, dimensions, the pixel
 * limit, animation. Cheap: the CLI runs them on every input before it loads a model.
 */
export async function checkHeader(bytes: Uint8Array, options: DecodeOptions): Promise<ImageHeader> {
  const { maxPixels, animated, expected } = DecodeOptionsSchema.parse(options);
  if (bytes.length === 0) throw new DomainError({ kind: "invalid_input", code: "image_empty", title: "The request body is empty; send the image bytes." });
  let metadata: Metadata;
  try {
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw classifyDecodeError(error);
  }
  if (metadata.format === undefined || !ACCEPTED.has(metadata.format)) {
    const type = metadata.format ? ` '${metadata.format}'` : "";
    throw new DomainError({ kind: "unsupported_type", code: "image_unsupported_type", title: `Unsupported image type${type}; send JPEG, PNG, WebP, AVIF, GIF or TIFF.` });
  }
  const width = metadata.autoOrient.width;
  const height = metadata.autoOrient.height;
  if (!width || !height) throw new DomainError({ kind: "unprocessable", code: "image_corrupt", title: "The image header has no dimensions." });
  checkExpected(width, height, expected);
  if (width * height > maxPixels) {
    throw new DomainError({ kind: "unprocessable", code: "image_too_large", title: `The image is ${width}x${height} (${width * height} pixels); the limit is ${maxPixels} pixels.` });
  }
  if ((metadata.pages ?? 1) > 1 && animated === "reject") {
    throw new DomainError({ kind: "unprocessable", code: "image_animated", title: `The image is animated (${metadata.pages} frames); animations are not upscaled.` });
  }
  return { width, height, format: metadata.format };
}

/**
 * Decodes untrusted bytes into 8-bit sRGB: EXIF orientation applied, CMYK, grey, 16-bit and embedded
 * ICC profiles converted, alpha split off. Every refusal is a DomainError (4xx), never a crash.
 */
export async function decodeImage(bytes: Uint8Array, options: DecodeOptions): Promise<DecodedImage> {
  const { maxPixels, expected } = DecodeOptionsSchema.parse(options);
  const { format } = await checkHeader(bytes, options);
  // limitInputPixels makes libvips itself refuse oversized headers; checkHeader gives the client a
  // precise 413 rather than a decoder message.
  const input = () => sharp(bytes, { limitInputPixels: maxPixels, failOn: "error", pages: 1 });

  let raw: { data: Buffer; info: OutputInfo };
  try {
    // autoOrient() applies EXIF orientation; toColourspace("srgb") converts CMYK, grey,
    // 16-bit and ICC-tagged pixels to 8-bit sRGB (libvips uses the embedded profile when present).
    raw = await input().autoOrient().toColourspace("srgb").raw().toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw classifyDecodeError(error);
  }
  const { data, info } = raw;
  checkExpected(info.width, info.height, expected);
  const quality = format === "jpeg" ? jpegQuality(bytes) : undefined;
  const about = { width: info.width, height: info.height, format, ...(quality === undefined ? {} : { jpegQuality: quality }) };
  if (info.channels === 3) return { ...about, rgb: data };
  if (info.channels !== 4) throw new DomainError({ kind: "unprocessable", code: "image_corrupt", title: `The image decoded to ${info.channels} channels.` });
  return { ...about, ...splitAlpha(data, info.width * info.height) };
}

/** The decoder's size (EXIF orientation applied) against the declared one. */
function checkExpected(width: number, height: number, expected: ImageSize | undefined): void {
  if (expected && (width !== expected.width || height !== expected.height)) {
    throw new DomainError({ kind: "unprocessable", code: "image_size_mismatch", title: `The image decodes to ${width}x${height}, not the declared ${expected.width}x${expected.height}.` });
  }
}

function splitAlpha(rgba: Buffer, pixels: number): { rgb: Buffer; alpha?: Buffer } {
  const rgb = Buffer.allocUnsafe(pixels * 3);
  const alpha = Buffer.allocUnsafe(pixels);
  let opaque = true;
  for (let i = 0; i < pixels; i++) {
    rgb[i * 3] = rgba[i * 4] as number;
    rgb[i * 3 + 1] = rgba[i * 4 + 1] as number;
    rgb[i * 3 + 2] = rgba[i * 4 + 2] as number;
    const a = rgba[i * 4 + 3] as number;
    alpha[i] = a;
    if (a !== 255) opaque = false;
  }
  // A fully opaque alpha carries nothing: dropping it saves the separate upscale and keeps JPEG honest.
  return opaque ? { rgb } : { rgb, alpha };
}

function classifyDecodeError(error: unknown): DomainError {
  const message = error instanceof Error ? error.message : String(error);
  if (/unsupported image format/i.test(message)) {
    return new DomainError({ kind: "unsupported_type", code: "image_unsupported_type", title: "The bytes are not an image type the runner decodes (JPEG, PNG, WebP, AVIF, GIF, TIFF)." });
  }
  if (/pixel limit/i.test(message)) return new DomainError({ kind: "unprocessable", code: "image_too_large", title: "The image has more pixels than the runner accepts." });
  if (/empty/i.test(message)) return new DomainError({ kind: "invalid_input", code: "image_empty", title: "The request body is empty; send the image bytes." });
  return new DomainError({ kind: "unprocessable", code: "image_corrupt", title: "The image is corrupt or truncated and could not be decoded." });
}
