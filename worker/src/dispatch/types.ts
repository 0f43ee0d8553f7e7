import { DomainError, type DomainErrorInit, type Model, type Output, type Progress, type RunnerLimits } from "@hvar/contract";
import type { JobFailure } from "../storage/jobs";
import type { StoredInput } from "../storage/uploads";
import type { NormalizedOptions } from "../validate/options";

/**
 * The one interface every dispatch backend implements. A backend starts a job and reports its
 * state; it reports `succeeded` only once every output is in the RESULTS bucket, so the caller can
 * sign URLs at once.
 */
export interface DispatchJob {
  id: string;
  /**
   * The image, already in the RESULTS bucket (inputs/<job id>, streamed there by the edge): a
   * backend reads it from there, never from the worker's memory.
   */
  input: StoredInput;
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
  /** `cleanup`: the strength the model applied (the job's own, or what `auto` chose); null where the backend does not say. */
  | { status: "succeeded"; outputs: Output[]; model: Model; runnerMs: number; cleanup: number | null }
  | { status: "failed"; error: JobFailure }
  /** The backend stopped the job because it was asked to (`cancel`). */
  | { status: "canceled" };

/**
 * The only error a backend throws, from `submit` and `poll` alike: a failure of this one job to reach
 * or hear from its backend. `retryable` (a runner down or busy, an answer or an output that could not
 * be read): another try, later or elsewhere, may succeed; the job has done no billable work yet.
 * Otherwise the backend refused the job itself, and the error is its precise reason (the runner's
 * `image_too_large`, `image_corrupt`, ...), which the client gets as it is.
 *
 * The title and code are public; what names a runner's address or a library's message goes in
 * `reason`, for the logs only.
 */
export class DispatchError extends DomainError {
  readonly retryable: boolean;

  constructor(init: DomainErrorInit & { retryable: boolean }) {
    super(init);
    this.name = "DispatchError";
    this.retryable = init.retryable;
  }
}

/** A retryable failure: `code` says which, `reason` (logs only) says why. */
export const unavailable = (code: string, reason: string, title = "No runner is available; try again") =>
  new DispatchError({ kind: "unavailable", code, title, retryAfterS: 5, reason, retryable: true });

/** The backend refused the job itself, for `error`'s reason: retrying cannot help. */
export const refused = (error: DomainError) =>
  new DispatchError({ kind: error.kind, code: error.code, title: error.title, ...(error.detail === undefined ? {} : { detail: error.detail }), retryable: false });

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
  /**
   * What the backend's runners accept (their model manifest's limits), for the edge to refuse
   * before the upload completes what none would take; null (or absent) when it cannot say.
   */
  limits?(): Promise<RunnerLimits | null>;
}
