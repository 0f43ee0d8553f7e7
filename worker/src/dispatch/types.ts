import { z } from "@hono/zod-openapi";
import type { NormalizedOptions } from "../validate/options";

/**
 * The one interface every dispatch backend implements. A backend starts a job and reports its
 * state; it reports `succeeded` only once every output is in the RESULTS bucket, so the caller can
 * sign URLs at once.
 */
export interface DispatchJob {
  id: string;
  image: Uint8Array<ArrayBuffer>;
  contentType: string;
  /**
   * The size the image decodes to (oriented), as the edge read it, billed and limited it. A runner
   * refuses an image that decodes to any other size (`image_size_mismatch`) before doing any work.
   */
  width: number;
  height: number;
  options: NormalizedOptions;
}

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

export type RemoteState =
  | { status: "queued" | "running" }
  | { status: "succeeded"; outputs: Output[]; model: Model; runnerMs: number }
  | { status: "failed"; error: JobError };

/**
 * A failure to hand a job over. `retryable` false means the backend refused the job itself (a bad
 * image the edge did not catch): retrying elsewhere cannot help.
 */
export class DispatchError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = "DispatchError";
  }
}

export interface Dispatcher {
  readonly backend: string;
  /** Starts the job (idempotent per job id); returns where it runs, for `poll`. */
  submit(job: DispatchJob): Promise<{ runner: string }>;
  /** The job's state; throws DispatchError when the backend cannot be reached (try again later). */
  poll(jobId: string, runner: string): Promise<RemoteState>;
}
