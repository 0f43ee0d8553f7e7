import { type QueueMessage, inputKey, jobRecordKey, runnerJobSchema } from "@hvar/contract";
import { remoteState } from "./runner-pool";
import { DispatchError, type DispatchJob, type Dispatcher, type RemoteState, unavailable } from "./types";

/** The part of a Queue binding this backend uses. */
export interface JobSender {
  send(message: QueueMessage, options?: QueueSendOptions): Promise<unknown>;
}

export interface JobQueueOptions {
  queue: JobSender;
  bucket: R2Bucket;
  /** MODEL_VERSION: `<id>@<version>` of the model every runner must serve. */
  model: string;
}

/**
 * Cloudflare Queues: jobs wait in a queue that runners consume (pull consumers over HTTP), which
 * absorbs bursts without the worker knowing any runner. A message is small (limit 128 KB): the
 * image is in R2 already (the edge streamed it there) and the message (a QueueMessage of
 * packages/contract) points at it. A runner reports by writing its outputs to R2 (as with the pool)
 * and then `jobs/<id>.json`, a Job of API.md; `poll` reads that object, and fails a job whose runner
 * serves another model than MODEL_VERSION.
 *
 * A message cannot be taken back from a queue, so `cancel` deletes the job's input: a runner that
 * has not started the job yet finds no input (`source_not_found`) and does no work; one that has
 * started it runs it to the end, and the worker ignores its result.
 */
export class JobQueue implements Dispatcher {
  readonly backend = "queue";

  constructor(private readonly options: JobQueueOptions) {}

  async submit(job: DispatchJob): Promise<{ runner: string }> {
    const { key, bytes, sha256 } = job.input;
    const message: QueueMessage = {
      v: 1,
      id: job.id,
      input: { key, contentType: job.contentType, bytes, sha256, width: job.width, height: job.height },
      ...job.options,
      requestId: job.requestId,
    };
    try {
      await this.options.queue.send(message, { contentType: "json" });
    } catch (error) {
      await this.options.bucket.delete(key);
      throw unavailable("queue_unavailable", `The job queue refused the job: ${String(error)}`);
    }
    return { runner: "queue" };
  }

  async cancel(jobId: string): Promise<void> {
    await this.options.bucket.delete(inputKey(jobId));
  }

  async poll(jobId: string): Promise<RemoteState> {
    try {
      return await this.pollOnce(jobId);
    } catch (error) {
      if (error instanceof DispatchError) throw error;
      // R2 unreachable, a record that is not a Job: this job's trouble, polled again until its deadline.
      throw unavailable("runner_protocol", `The job's record could not be read: ${String(error)}`);
    }
  }

  private async pollOnce(jobId: string): Promise<RemoteState> {
    const object = await this.options.bucket.get(jobRecordKey(jobId));
    if (!object) return { status: "queued" };
    const job = runnerJobSchema.parse(await object.json());
    const state = await remoteState(jobId, job, this.options.model, async (output) => {
      const stored = await this.options.bucket.head(output.key);
      if (stored?.customMetadata?.sha256 !== output.sha256) throw unavailable("runner_protocol", `Output ${output.key} is not in R2 with its sha256`);
    });
    // The input is no longer needed once the job has ended.
    if (state.status === "succeeded" || state.status === "failed") await this.options.bucket.delete(inputKey(jobId));
    return state;
  }
}
