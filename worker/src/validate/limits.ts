import type { Scale } from "@hvar/contract";
import { ProblemError } from "../http/problem";
import type { ImageInfo } from "./sniff";

/**
 * Pixel limits: the largest output has `maxOutputPixels`, so an input may have at most
 * maxOutputPixels / s² pixels for the largest requested scale s. Animated images are refused:
 * the model upscales single frames, and silently dropping frames would surprise clients.
 */
export function checkLimits(image: ImageInfo, scales: readonly Scale[], maxOutputPixels: number): void {
  if (image.animated) {
    throw new ProblemError({
      status: 422,
      code: "animated_image",
      title: "Animated images are not supported",
      detail: `This ${image.type} has more than one frame; send a single frame.`,
    });
  }
  const pixels = image.width * image.height;
  for (const scale of scales) {
    const maxInput = Math.floor(maxOutputPixels / (scale * scale));
    if (pixels > maxInput) {
      throw new ProblemError({
        status: 422,
        code: "image_too_large",
        title: "The image is too large for the requested scale",
        detail: `${image.width}x${image.height} is ${pixels} pixels; at x${scale} the limit is ${maxInput} input pixels.`,
        scale,
        maxInputPixels: maxInput,
      });
    }
  }
}
