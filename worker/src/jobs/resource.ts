import { z } from "@hono/zod-openapi";
import { DomainError, progressSchema as runnerProgressSchema } from "@hvar/contract";
import type { Config } from "../config";
import { jobErrorSchema, modelSchema } from "../contract";
import { signResultPath } from "../security/result-url";
import { type JobRecord, getJob, jobStatusSchema } from "../storage/jobs";
import { ownResultPath } from "../storage/results";
import { normalizedOptionsSchema } from "../validate/options";
import { megapixels } from "./billing";
import { isExpired, resultUrlExpiry } from "./retention";

/**
 * A job as the upscale API shows it, in its answers and in its webhook event (notify.ts): its
 * options and input, its progress while it runs, one signed URL per output while the URLs are
 * valid, and how it counts (a cache hit is not billed).
 */
export const progressSchema = runnerProgressSchema
  .extend({ fraction: z.number().min(0).max(1).openapi({ description: "tilesDone / tilesTotal", example: 0.25 }) })
  .openapi("UpscaleProgress", { description: "Tiles of the image through the model so far (runners count them)" });

export const jobResourceSchema = z
  .object({
    id: z.string(),
    status: jobStatusSchema.openapi({ description: "`canceled`: stopped by POST /v1/upscales/{id}/cancel (refunded)" }),
    createdAt: z.iso.datetime(),
    model: modelSchema.nullable(),
    options: normalizedOptionsSchema,
    cleanupApplied: z.number().optional().openapi({
      description:
        "The clean-up strength the model applied to this image once it succeeded: `options.cleanup`, or the one `auto` chose (1 for a noisy photo, else 0.75). Absent where the backend does not say (Replicate) and for jobs made before 2026-12-05",
      example: 0.75,
    }),
    input: z.object({ width: z.number().int(), height: z.number().int(), type: z.string(), megapixels: z.number() }),
    progress: progressSchema.optional().openapi({ description: "While queued or running, once the backend reports tiles" }),
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
  // Never valid after the results expire (retention.ts); an expired job has no URLs to give.
  const urlsExpireAtS = resultUrlExpiry(job, config, now);
  const ttlS = urlsExpireAtS - Math.floor(now / 1000);
  const outputs =
    job.status === "succeeded" && job.outputs && ttlS > 0
      ? await Promise.all(
          job.outputs.map(async (o) => ({
            scale: o.scale,
            url: origin + (await signResultPath(ownResultPath(job.id, o.key), config.RESULT_SIGNING_KEYS, ttlS, now)),
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
    ...(job.status === "succeeded" && job.cleanupApplied !== null ? { cleanupApplied: job.cleanupApplied } : {}),
    input: { ...job.input, megapixels: inputMp },
    ...(job.progress && (job.status === "queued" || job.status === "running")
      ? { progress: { ...job.progress, fraction: job.progress.tilesTotal > 0 ? job.progress.tilesDone / job.progress.tilesTotal : 0 } }
      : {}),
    ...(outputs ? { outputs, urlsExpireAt: new Date(urlsExpireAtS * 1000).toISOString() } : {}),
    usage: { inputMp, cacheHit, billable, billedMp: billable ? inputMp : 0 },
    // The stored kind stays inside the worker: a job's error shows its code and title.
    ...(job.error ? { error: { code: job.error.code, title: job.error.title } } : {}),
  };
}

/** The caller's job, deleted or expired or not; another key's job is as unknown as a missing one (404). */
export async function ownJob(db: D1Database, keyId: string, id: string): Promise<JobRecord> {
  const job = await getJob(db, id);
  if (!job || job.keyId !== keyId) throw new DomainError({ kind: "not_found", code: "job_not_found", title: "No such upscale" });
  return job;
}

/**
 * What every read of a job whose results are gone answers, or null while they are kept: 410
 * `job_expired` once they expired (RESULT_TTL_DAYS after its creation, jobs/retention.ts; checked
 * first, as the sweep marks expired jobs deleted too), 410 `job_deleted` after DELETE /v1/upscales/{id}.
 */
export function goneProblem(job: JobRecord, config: Config, now = Date.now()): DomainError | null {
  if (isExpired(job, config, now)) {
    return new DomainError({
      kind: "gone",
      code: "job_expired",
      title: "This upscale has expired",
      detail: `Results are kept ${config.RESULT_TTL_DAYS} days; upscale the image again.`,
      extensions: { jobId: job.id },
    });
  }
  if (job.deletedAt !== null) {
    return new DomainError({
      kind: "gone",
      code: "job_deleted",
      title: "This upscale was deleted",
      detail: "Its results were deleted with DELETE /v1/upscales/{id}.",
      extensions: { jobId: job.id, deletedAt: new Date(job.deletedAt).toISOString() },
    });
  }
  return null;
}

/** Throws goneProblem's problem, if any: every read of a job but a POST's answer, which carries its own headers. */
export function assertResultsKept(job: JobRecord, config: Config, now = Date.now()): void {
  const gone = goneProblem(job, config, now);
  if (gone) throw gone;
}

/** The path parameter of every /v1/upscales/{id} route. */
export const jobIdParams = z.object({ id: z.string().openapi({ param: { name: "id", in: "path" }, example: "j_abcdefghijklmnopqrst" }) });
