import { z } from "@hono/zod-openapi";
import { AUTO_CLEANUP, AUTO_CLEANUP_RULE, CONTENT_TYPES, type Cleanup, DEFAULT_CLEANUP, DomainError, OUTPUT_FORMATS, type OutputFormat, SCALES, cleanupSchema, jobOptionsSchema, qualitySchema, scaleListSchema, scaleSchema } from "@hvar/contract";

/**
 * Upscale options as clients send them (query string or multipart fields, all strings) and
 * their one normalized form (packages/contract's JobOptions), which is what the cache key, the
 * runner and the answer see.
 */
export const upscaleParamsSchema = z.strictObject({
  scales: scaleListSchema.openapi({ description: `Comma-separated subset of ${SCALES.join(", ")}`, example: "2,4" }),
  format: z
    .enum([...OUTPUT_FORMATS, "auto"])
    .default("auto")
    .openapi({ description: "`auto` picks AVIF, then WebP, then PNG from the Accept header" }),
  quality: qualitySchema.openapi({ description: "For lossy formats, on JPEG's scale: an AVIF is encoded at the quality that gives a JPEG's fidelity (its files about half the JPEG's); WebP at libwebp's own" }),
  temperature: z.coerce
    .number()
    .min(0)
    .max(2)
    .default(0)
    .openapi({
      description:
        "Sampling temperature of the generated detail; 0 is greedy (deterministic). A deterministic model (one without a sampled detail stage, such as the hvar 2.x floor) makes the same pixels at every temperature: it is then normalized to 0, as the job's `options` show, and one cached result serves them all",
    }),
  cleanup: cleanupSchema.default(AUTO_CLEANUP).openapi({
    description: `How strongly x1 cleans the input of noise, blur and compression before it is upscaled: 1 as fully as the model can (best for heavily damaged photos), 0 not at all (the input's grain and texture kept, as for a clean original), in proportion between. \`${AUTO_CLEANUP}\`, the default, reads the image's noise and, for a JPEG, its quality: ${AUTO_CLEANUP_RULE}; ${DEFAULT_CLEANUP} keeps a photo's fine texture and cleans ordinary JPEGs best while staying within 0.11 dB of 1 on heavy damage. A model without the setting cleans fully: it is then normalized to 1, as the job's \`options\` show`,
    example: AUTO_CLEANUP,
  }),
  webhook_url: z
    .url({ protocol: /^https?$/ })
    .optional()
    .openapi({ description: "Receives a signed upscale.succeeded, upscale.failed or upscale.canceled event (Standard Webhooks)" }),
});
export type UpscaleParams = z.infer<typeof upscaleParamsSchema>;

/**
 * The JSON body of POST /v1/upscales: the image by URL, fetched under the CDN sources' rules
 * (the key's CDN origins, public https hosts), and the same options as the query string, with
 * JSON's types (`"scales": [2, 4]` or `"2,4"`).
 */
export const upscaleFromUrlSchema = upscaleParamsSchema
  .extend({
    image: z.url({ protocol: /^https?$/ }).openapi({
      description: "The image's URL: under one of the key's CDN origins (cdnOrigins), https on a public host",
      example: "https://images.example/photos/cat.jpg",
    }),
    scales: z
      .union([z.array(scaleSchema).min(1).transform((scales) => [...new Set(scales)].sort((a, b) => a - b)), scaleListSchema])
      .openapi({ description: `A subset of ${SCALES.join(", ")}: an array, or comma-separated`, example: [2, 4] }),
  })
  .openapi("UpscaleFromUrl");
export type UpscaleFromUrl = z.infer<typeof upscaleFromUrlSchema>;

export const normalizedOptionsSchema = jobOptionsSchema.openapi("UpscaleOptions");
export type NormalizedOptions = z.infer<typeof normalizedOptionsSchema>;

/** `format=auto`: AVIF, then WebP, then PNG, by what the client accepts. */
export function formatFromAccept(accept: string | undefined): OutputFormat {
  const types = (accept ?? "").toLowerCase();
  if (types.includes(CONTENT_TYPES.avif)) return "avif";
  if (types.includes(CONTENT_TYPES.webp)) return "webp";
  return "png";
}

function parsed<T>(result: z.ZodSafeParseResult<T>): T {
  if (!result.success) {
    throw new DomainError({ kind: "invalid_input", code: "invalid_options", title: "The upscale options are invalid", detail: z.prettifyError(result.error) });
  }
  return result.data;
}

export function parseUpscaleParams(input: Record<string, string>): UpscaleParams {
  return parsed(upscaleParamsSchema.safeParse(input));
}

/** A JSON body (with the query string's options under it). */
export function parseUpscaleFromUrl(input: Record<string, unknown>): UpscaleFromUrl {
  return parsed(upscaleFromUrlSchema.safeParse(input));
}

/**
 * A concrete format, no quality where it means nothing (PNG), no temperature where the model does
 * not sample (`sampling`: every temperature makes the greedy pixels) and full clean-up where the model
 * has no setting for it (`cleanup`); the scales come sorted and unique.
 */
export function normalizeUpscaleOptions(params: UpscaleParams, accept: string | undefined, model: { sampling: boolean; cleanup: boolean }): NormalizedOptions {
  const format = params.format === "auto" ? formatFromAccept(accept) : params.format;
  return {
    scales: params.scales,
    format,
    quality: format === "png" ? null : params.quality,
    temperature: model.sampling ? params.temperature : 0,
    cleanup: servedCleanup(params.cleanup, model.cleanup),
  };
}

/** The strength a job runs at: the one asked, or 1 where the runners' model has no setting (it always cleans fully). */
export const servedCleanup = (asked: Cleanup, adjustable: boolean): Cleanup => (adjustable ? asked : 1);
