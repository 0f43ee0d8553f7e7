import type { JobError, Model, Output, Progress } from "@hvar/contract";
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
  /** The id the job is logged under (the X-Request-Id of the request that created it), for the runner's logs. */
  requestId: string | null;
}

export type RemoteState =
  /** `progress` where the backend counts tiles while the job runs (the runner pool). */
  | { status: "queued" | "running"; progress?: Progress }
  | { status: "succeeded"; outputs: Output[]; model: Model; runnerMs: number }
  | { status: "failed"; error: JobError }
  /** The backend stopped the job because it was asked to (`cancel`). */
  | { status: "canceled" };

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
  poll(jobId: string, runner: string, requestId?: string | null): Promise<RemoteState>;
  /**
   * Stops the job's work, as far as the backend can (idempotent): the caller no longer wants its
   * result (a customer's cancel) or gave up on it (deadline, a submit without an answer). `runner`
   * is null when the submit failed: the backend may still have taken the job. The job's state
   * afterwards comes from `poll`. Throws DispatchError when the backend cannot be reached.
   */
  cancel(jobId: string, runner: string | null, requestId?: string | null): Promise<void>;
}
