import { DomainError, type PixelLimits, type Scale, maxInputPixelsAt } from "@hvar/contract";
import type { ImageInfo } from "./sniff";

/**
 * What the edge accepts: the runners' limits (their model manifest, read by dispatch/runner-pool.ts,
 * else packages/contract's limits.ts) within the worker's own settings, and the largest body.
 */
export interface EdgeLimits extends PixelLimits {
  maxBytes: number;
  /** The scales the runners serve. */
  scales: readonly Scale[];
  /** Whether the runners' model samples, so that a temperature changes the pixels (normalizeUpscaleOptions). */
  sampling: boolean;
  /** Whether the runners' model takes a clean-up strength, so that `cleanup` changes the pixels. */
  cleanup: boolean;
}

/**
 * Pixel limits: an input has at most `maxInputPixels`, the most a runner processes, and at most
 * maxOutputPixels / s² for the largest requested scale s. Checked on a lower bound of the size while
 * the image still streams in (validate/sniff.ts's size hook), and on the size the decoder will
 * produce once it is stored, before any job exists.
 */
export function checkPixels(size: { width: number; height: number }, scales: readonly number[], limits: EdgeLimits): void {
  const pixels = size.width * size.height;
  for (const scale of scales) {
    const maxInput = maxInputPixelsAt(scale, limits);
    if (pixels > maxInput) {
      throw new DomainError({
        kind: "unprocessable",
        code: "image_too_large",
        title: "The image is too large for the requested scale",
        detail: `${size.width}x${size.height} is ${pixels} pixels; at x${scale} the limit is ${maxInput} input pixels.`,
        extensions: { scale, maxInputPixels: maxInput },
      });
    }
  }
}

/**
 * Every limit on the decoded image: the scales the runners serve, the pixels, and no animation: the
 * model upscales single frames, and silently dropping frames would surprise clients.
 */
export function checkLimits(image: ImageInfo, scales: readonly Scale[], limits: EdgeLimits): void {
  const unserved = scales.filter((scale) => !limits.scales.includes(scale));
  if (unserved.length > 0) {
    throw new DomainError({
      kind: "unprocessable",
      code: "scale_not_served",
      title: "The runners do not serve this scale",
      detail: `x${unserved.join(", x")} is not among x${limits.scales.join(", x")}.`,
    });
  }
  if (image.animated) {
    throw new DomainError({
      kind: "unprocessable",
      code: "animated_image",
      title: "Animated images are not supported",
      detail: `This ${image.type} has more than one frame; send a single frame.`,
    });
  }
  checkPixels(image, scales, limits);
}
