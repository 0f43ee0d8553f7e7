/**
 * How large an image hvar processes, defined once: the runner's settings default to these
 * (HVAR_MAX_INPUT_PIXELS) and so do the worker's (MAX_INPUT_PIXELS), so the edge refuses at once,
 * before any job exists, what a runner would refuse after the upload. An operator who changes one
 * side's setting changes the other's with it; where they still disagree, the runner's refusal
 * reaches the client with its own code (`image_too_large`), never a generic one.
 */

/**
 * Decoded input pixels of one job at most, whatever its scales: 2^22 (2048x2048). The runner holds
 * about 1 GB for a job of that size while it runs (the tiles of every scale, blended in float32).
 */
export const MAX_INPUT_PIXELS = 2 ** 22;

/** The largest output image (64 MP): an input for scale s may have this over s² pixels at most. */
export const MAX_OUTPUT_PIXELS = 64 * 1024 * 1024;

export interface PixelLimits {
  maxInputPixels: number;
  maxOutputPixels: number;
}

/** The largest input, in pixels, for an image wanted at `scale`. */
export const maxInputPixelsAt = (scale: number, { maxInputPixels, maxOutputPixels }: PixelLimits): number =>
  Math.min(maxInputPixels, Math.floor(maxOutputPixels / (scale * scale)));
