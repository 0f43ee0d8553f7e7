import { z } from "zod";
import { modelSchema, scaleSchema } from "./job.ts";

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

/**
 * What one runner accepts, as it answers `GET /v1/model` (gpu-runner/API.md): its model manifest's
 * limits within the runner's settings. The worker reads it (dispatch/runner-limits.ts) and refuses
 * at the edge, before the upload completes, what no runner would take; where no runner has been
 * heard, it falls back to the constants above.
 */
export const runnerLimitsSchema = z.object({
  maxInputPixels: z.number().int().positive(),
  maxOutputPixels: z.number().int().positive(),
  /** The largest request body the runner reads (HVAR_MAX_BODY_BYTES). */
  maxBodyBytes: z.number().int().positive(),
  scales: z.array(scaleSchema).min(1),
  /**
   * Whether the model samples generated detail, so that a job's temperature changes its pixels (its
   * manifest's `tokens` > 0). A deterministic model makes every temperature's output the greedy one:
   * the worker then normalizes the temperature to 0, so that one cache entry and one bill serve them
   * all. Absent (a runner from before this field): assumed to sample, which keeps temperatures apart.
   */
  sampling: z.boolean().default(true),
  /**
   * Whether the model takes a clean-up strength (its manifest's `cleanup`), so that a job's `cleanup`
   * changes its pixels. A model without one cleans up fully: the worker then normalizes `cleanup` to 1.
   * Absent (a runner from before this field): assumed to take it, which keeps strengths apart.
   */
  cleanup: z.boolean().default(true),
});
export type RunnerLimits = z.infer<typeof runnerLimitsSchema>;

export const MODEL_PATH = "/v1/model";

/** `GET /v1/model`: the model a runner serves and what it accepts. */
export const runnerModelSchema = z.object({ model: modelSchema, limits: runnerLimitsSchema });
export type RunnerModel = z.infer<typeof runnerModelSchema>;
