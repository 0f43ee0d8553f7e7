import { z } from "@hono/zod-openapi";
import { jobStatusSchema } from "@hvar/contract";
import type { Config } from "../config";
import { jobErrorSchema, modelSchema } from "../contract";
import { megapixels } from "./billing";
import { signResultPath } from "../security/result-url";
import type { JobRecord } from "../storage/jobs";
import { resultPath } from "../storage/results";
import { normalizedOptionsSchema } from "../validate/options";

/**
 * A job as the upscale API shows it, in its answers and in its webhook event (notify.ts): its
 * options and input, one signed URL per output while the URLs are valid, and how it counts (a
 * cache hit is not billed).
 */
export const jobResourceSchema = z
  .object({
    id: z.string(),
    status: jobStatusSchema,
    createdAt: z.iso.datetime(),
    model: modelSchema.nullable(),
    options: normalizedOptionsSchema,
    input: z.object({ width: z.number().int(), height: z.number().int(), type: z.string(), megapixels: z.number() }),
    outputs: z
      .array(
        z.object({
          scale: z.number().int(),
          url: z.url().openapi({ description: "Signed; valid until `urlsExpireAt`" }),
          contentType: z.string(),
          width: z.number().int(),
          height: z.number().int(),
          bytes: z.number().int(),
        }),
      )
      .optional(),
    urlsExpireAt: z.iso.datetime().optional(),
    usage: z.object({
      inputMp: z.number(),
      cacheHit: z.boolean(),
      billable: z.boolean().openapi({ description: "Cache hits are not billed" }),
      billedMp: z.number().openapi({ description: "Megapixels billed to the key for this job: its input's once it succeeded, else 0" }),
    }),
    error: jobErrorSchema.optional(),
  })
  .openapi("Upscale");
export type JobResource = z.infer<typeof jobResourceSchema>;

/** `origin` is where the result URLs point (the worker's own). */
export async function toResource(job: JobRecord, origin: string, config: Config, now = Date.now()): Promise<JobResource> {
  const inputMp = megapixels(job.input.width, job.input.height);
  const cacheHit = job.backend === "cache";
  const billable = !cacheHit && job.status === "succeeded";
  const outputs =
    job.status === "succeeded" && job.outputs
      ? await Promise.all(
          job.outputs.map(async (o) => ({
            scale: o.scale,
            url: origin + (await signResultPath(resultPath(o.key), config.RESULT_SIGNING_KEYS, config.RESULT_URL_TTL_S, now)),
            contentType: o.contentType,
            width: o.width,
            height: o.height,
            bytes: o.bytes,
          })),
        )
      : undefined;
  return {
    id: job.id,
    status: job.status,
    createdAt: new Date(job.createdAt).toISOString(),
    model: job.model,
    options: job.options,
    input: { ...job.input, megapixels: inputMp },
    ...(outputs ? { outputs, urlsExpireAt: new Date((Math.floor(now / 1000) + config.RESULT_URL_TTL_S) * 1000).toISOString() } : {}),
    usage: { inputMp, cacheHit, billable, billedMp: billable ? inputMp : 0 },
    ...(job.error ? { error: job.error } : {}),
  };
}
