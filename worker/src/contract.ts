import { z } from "@hono/zod-openapi";

/**
 * What the worker and the runners agree on about a job's results: an output's shape and R2 key,
 * the model that made it, a job's error, and where a job's input waits in R2. Storage keeps these
 * in job records; every dispatch backend reports them.
 */
export const outputSchema = z
  .object({
    scale: z.union([z.literal(1), z.literal(2), z.literal(4)]),
    key: z.string().regex(/^results\/j_[a-z2-7]{20}\/x[124]\.(png|webp|avif|jpeg)$/),
    contentType: z.string(),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    bytes: z.number().int().nonnegative(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .openapi("RunnerOutput");
export type Output = z.infer<typeof outputSchema>;

/** Where a backend keeps a job's input until the job ends (the queue's runners read it; the pool resends it). */
export const inputKey = (jobId: string) => `inputs/${jobId}`;

export const modelSchema = z.object({ id: z.string(), version: z.string() }).openapi("Model");
export type Model = z.infer<typeof modelSchema>;

export const jobErrorSchema = z.object({ code: z.string(), title: z.string() }).openapi("JobError");
export type JobError = z.infer<typeof jobErrorSchema>;
