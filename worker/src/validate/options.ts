import { z } from "@hono/zod-openapi";
import { ProblemError } from "../http/problem";

/**
 * Upscale options as clients send them (query string or multipart fields, all strings) and
 * their one normalized form, which is what the cache key, the runner and the answer see.
 */
export const SCALES = [1, 2, 4] as const;
export type Scale = (typeof SCALES)[number];
export const OUTPUT_FORMATS = ["png", "webp", "avif", "jpeg"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

const scaleSchema = z.union([z.literal(1), z.literal(2), z.literal(4)]);

const scaleList = (list: string) => list.split(",").map((s) => Number(s.trim().replace(/^x/i, "")));

export const upscaleParamsSchema = z.strictObject({
  scales: z
    .string()
    .default("1,2,4")
    .transform(scaleList)
    .pipe(z.array(scaleSchema).min(1))
    .openapi({ description: "Comma-separated subset of 1, 2, 4", example: "2,4" }),
  format: z
    .enum([...OUTPUT_FORMATS, "auto"])
    .default("auto")
    .openapi({ description: "`auto` picks AVIF, then WebP, then PNG from the Accept header" }),
  quality: z.coerce.number().int().min(1).max(100).default(90).openapi({ description: "For lossy formats" }),
  temperature: z.coerce.number().min(0).max(2).default(0).openapi({ description: "Sampling temperature; 0 is greedy (deterministic)" }),
  webhook_url: z
    .url({ protocol: /^https?$/ })
    .optional()
    .openapi({ description: "Receives a signed upscale.succeeded / upscale.failed event (Standard Webhooks)" }),
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
      .union([z.array(scaleSchema), z.string().transform(scaleList)])
      .default([1, 2, 4])
      .pipe(z.array(scaleSchema).min(1))
      .openapi({ description: "A subset of 1, 2, 4 (an array, or comma-separated)", example: [2, 4] }),
  })
  .openapi("UpscaleFromUrl");
export type UpscaleFromUrl = z.infer<typeof upscaleFromUrlSchema>;

export const normalizedOptionsSchema = z
  .object({
    scales: z.array(scaleSchema),
    format: z.enum(OUTPUT_FORMATS),
    quality: z.number().int().nullable(),
    temperature: z.number(),
  })
  .openapi("UpscaleOptions");
export type NormalizedOptions = z.infer<typeof normalizedOptionsSchema>;

/** `format=auto`: AVIF, then WebP, then PNG, by what the client accepts. */
export function formatFromAccept(accept: string | undefined): OutputFormat {
  const types = (accept ?? "").toLowerCase();
  if (types.includes("image/avif")) return "avif";
  if (types.includes("image/webp")) return "webp";
  return "png";
}

function parsed<T>(result: z.ZodSafeParseResult<T>): T {
  if (!result.success) {
    throw new ProblemError({ status: 400, code: "invalid_options", title: "The upscale options are invalid", detail: z.prettifyError(result.error) });
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

/** Sorted unique scales, a concrete format, and no quality where it means nothing (PNG). */
export function normalizeUpscaleOptions(params: UpscaleParams, accept: string | undefined): NormalizedOptions {
  const format = params.format === "auto" ? formatFromAccept(accept) : params.format;
  return {
    scales: [...new Set(params.scales)].sort((a, b) => a - b),
    format,
    quality: format === "png" ? null : params.quality,
    temperature: params.temperature,
  };
}
