import { z } from "@hono/zod-openapi";
import { inputKey, outputSchema } from "../contract";
import { sha256Hex } from "../security/crypto";
import { remoteState, runnerJobSchema } from "./runner-pool";
import { DispatchError, type DispatchJob, type Dispatcher, type RemoteState } from "./types";

/**
 * Cloudflare Queues: jobs wait in a queue that runners consume (pull consumers over HTTP), which
 * absorbs bursts without the worker knowing any runner. A message is small (limit 128 KB), so the
 * image goes to R2 first and the message points at it. A runner reports by writing its outputs to
 * R2 (as with the pool) and then `jobs/<id>.json`, a Job of API.md; `poll` reads that object.
 */
export const queueMessageSchema = z.object({
  v: z.literal(1),
  id: z.string(),
  /** `width` x `height`: the size the worker billed; a consumer refuses an image that decodes to another. */
  input: z.object({ key: z.string(), contentType: z.string(), bytes: z.number().int(), sha256: z.string(), width: z.number().int().positive(), height: z.number().int().positive() }),
  scales: z.array(outputSchema.shape.scale),
  format: z.enum(["png", "webp", "avif", "jpeg"]),
  quality: z.number().int().nullable(),
  temperature: z.number(),
  /** The id the job is logged under (the X-Request-Id of the request that created it); runners log the job with it. */
  requestId: z.string().nullable().optional(),
});
export type QueueMessage = z.infer<typeof queueMessageSchema>;

/** The part of a Queue binding this backend uses. */
export interface JobSender {
  send(message: QueueMessage, options?: QueueSendOptions): Promise<unknown>;
}

export interface JobQueueOptions {
  queue: JobSender;
  bucket: R2Bucket;
}

export const statusKey = (jobId: string) => `jobs/${jobId}.json`;

export class JobQueue implements Dispatcher {
  readonly backend = "queue";

  constructor(private readonly options: JobQueueOptions) {}

  async submit(job: DispatchJob): Promise<{ runner: string }> {
    const key = inputKey(job.id);
    const sha256 = await sha256Hex(job.image);
    await this.options.bucket.put(key, job.image, { httpMetadata: { contentType: job.contentType }, customMetadata: { sha256 } });
    const message: QueueMessage = {
      v: 1,
      id: job.id,
      input: { key, contentType: job.contentType, bytes: job.image.length, sha256, width: job.width, height: job.height },
      ...job.options,
      requestId: job.requestId,
    };
    try {
      await this.options.queue.send(message, { contentType: "json" });
    } catch (error) {
      await this.options.bucket.delete(key);
      throw new DispatchError("queue_unavailable", `The job queue refused the job: ${String(error)}`, true);
    }
    return { runner: "queue" };
  }

  async poll(jobId: string): Promise<RemoteState> {
    const object = await this.options.bucket.get(statusKey(jobId));
    if (!object) return { status: "queued" };
    const job = runnerJobSchema.parse(await object.json());
    const state = await remoteState(jobId, job, async (output) => {
      const stored = await this.options.bucket.head(output.key);
      if (stored?.customMetadata?.sha256 !== output.sha256) {
        throw new DispatchError("runner_protocol", `Output ${output.key} is not in R2 with its sha256`, true);
      }
    });
    // The input is no longer needed once the job has ended.
    if (state.status === "succeeded" || state.status === "failed") await this.options.bucket.delete(inputKey(jobId));
    return state;
  }
}
