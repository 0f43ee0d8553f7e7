import { DomainError, type PixelLimits, type Scale, maxInputPixelsAt } from "@hvar/contract";
import type { ImageInfo } from "./sniff";

/**
 * Pixel limits (packages/contract's limits.ts): an input has at most `maxInputPixels`, the most a
 * runner processes, and at most maxOutputPixels / s² for the largest requested scale s. Checked on
 * the size the decoder will produce, before any job exists. Animated images are refused:
 * the model upscales single frames, and silently dropping frames would surprise clients.
 */
export function checkLimits(image: ImageInfo, scales: readonly Scale[], limits: PixelLimits): void {
  if (image.animated) {
    throw new DomainError({
      kind: "unprocessable",
      code: "animated_image",
      title: "Animated images are not supported",
      detail: `This ${image.type} has more than one frame; send a single frame.`,
    });
  }
  const pixels = image.width * image.height;
  for (const scale of scales) {
    const maxInput = maxInputPixelsAt(scale, limits);
    if (pixels > maxInput) {
      throw new DomainError({
        kind: "unprocessable",
        code: "image_too_large",
        title: "The image is too large for the requested scale",
        detail: `${image.width}x${image.height} is ${pixels} pixels; at x${scale} the limit is ${maxInput} input pixels.`,
        extensions: { scale, maxInputPixels: maxInput },
      });
    }
  }
}
