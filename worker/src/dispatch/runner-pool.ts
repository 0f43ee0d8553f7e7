import { z } from "@hono/zod-openapi";
import { DomainError, MODEL_PATH, type Output, type RunnerLimits, type RunnerJob, cancelJobPath, createJobPath, fromProblem, inputKey, isCanceled, jobPath, modelName, outputPath, parseResultKey, runnerJobSchema, runnerModelSchema } from "@hvar/contract";
import { sha256Hex } from "../security/crypto";
import { signRunnerRequest } from "../security/runner-signature";
import { putResult } from "../storage/results";
import { sendStateKey } from "../storage/uploads";
import { DispatchError, type DispatchJob, type Dispatcher, type RemoteState, refused, unavailable } from "./types";

/**
 * Direct HTTP to a pool of runners (gpu-runner/API.md). Each job starts at a runner chosen by its
 * id (spreading load without shared state) and moves on to the next one when a runner is down,
 * busy (429/503) or slow; the job id makes a repeated submit idempotent on the runner side. The
 * input is in R2 already (`inputs/<job id>`, where the edge streamed it): each send streams it from
 * there to the runner, signed by the sha256 it was stored with, never holding it in memory.
 *
 * A runner that restarts forgets the jobs it had in flight (404 afterwards). The input stays in R2
 * until the job ends, so such a job is sent to that runner again, with the same id, up to MAX_SENDS
 * times in all (counted beside the input, `inputs/<job id>.send`); only then does it fail as
 * `job_lost` (and is refunded).
 *
 * `limits` says what the pool's runners accept (`GET /v1/model`), for the edge to enforce.
 *
 * A URL may also be a load balancer in front of runner replicas (a Kubernetes Service): replicas that
 * share a store answer for each other's jobs from it, and a 404 there means the job's replica died,
 * so the same resend reaches whichever replica the balancer picks, which takes the job over
 * (gpu-runner/API.md, "Replicas behind a load balancer"). Replicas may disagree for a few seconds (the
 * restarted owner knows at once that its job died, the others only once its heartbeat is stale), so a
 * resend answered 200 (a replica still holds the job) spends no send; only a 202 (started again) does.
 *
 * Every answer names the model the runner serves; a runner whose model is not MODEL_VERSION is passed
 * over like a busy one, since its results would be cached under the wrong model.
 *
 * Every call about a job carries the job's request id in X-Request-Id (the submit, each poll, a
 * cancel, the output copies, a resend): the runner logs the request, and the job it creates, under
 * that id.
 *
 * `cancel` asks the job's runner to stop it (`POST /v1/jobs/<id>/cancel`): its tiles leave the
 * runner's queue at once, and the job ends there `failed` with `job_canceled` (the contract's
 * JOB_CANCELED), which `poll` reports as canceled. The input is deleted first, so the job is never
 * sent again. After a submit without an answer (runner null) every runner of the pool is asked, as
 * any of them may have taken it.
 */
export interface RunnerPoolOptions {
  urls: readonly string[];
  secret: string;
  timeoutMs: number;
  bucket: R2Bucket;
  /** MODEL_VERSION: `<id>@<version>` of the model every runner must serve. */
  model: string;
}

/**
 * How a job is sent (again): kept in R2 beside its input (`inputs/<job id>.send`, under the same
 * lifecycle rule), since a resend happens in a later request, after the runner lost the job.
 */
const sendStateSchema = z.object({
  path: z.string(),
  input: z.object({ key: z.string(), bytes: z.number().int().nonnegative(), sha256: z.string() }),
  contentType: z.string(),
  requestId: z.string().nullable(),
  attempts: z.number().int().positive(),
});
type SendState = z.infer<typeof sendStateSchema>;

/** Statuses after which another runner may well succeed. */
const RETRYABLE = new Set([401, 408, 429, 500, 502, 503, 504]);

/** Sends of one job in all: the first, and again after each runner restart that lost it. */
export const MAX_SENDS = 3;

const lost = (): RemoteState => ({ status: "failed", error: { code: "job_lost", title: "The runner no longer knows this job" } });

/** A job whose runner serves another model than MODEL_VERSION: failed (and refunded), never stored. */
const modelMismatch = (job: RunnerJob, model: string): RemoteState => ({
  status: "failed",
  error: { code: "model_mismatch", title: `The runner serves ${modelName(job.model)}, not ${model}` },
});

/**
 * A runner's Job as the worker's state. The runner must serve `model` (MODEL_VERSION); `store` makes
 * sure an output is in R2 before the job is reported succeeded; outputs must lie under the job's own prefix.
 */
export async function remoteState(jobId: string, job: RunnerJob, model: string, store: (output: Output) => Promise<void>): Promise<RemoteState> {
  if (job.id !== jobId) throw unavailable("runner_protocol", "The runner answered for another job");
  if (isCanceled(job)) return { status: "canceled" };
  if (job.status === "failed") return { status: "failed", error: job.error ?? { code: "job_failed", title: "The job failed" } };
  if (modelName(job.model) !== model) return modelMismatch(job, model);
  if (job.status !== "succeeded") return { status: job.status, progress: job.progress };
  if (!job.outputs) throw unavailable("runner_protocol", "A succeeded job without outputs");
  for (const output of job.outputs) {
    if (parseResultKey(output.key)?.jobId !== jobId) throw unavailable("runner_protocol", "An output outside the job's prefix");
    await store(output);
  }
  return { status: "succeeded", outputs: job.outputs, model: job.model, runnerMs: job.runnerMs ?? 0, cleanup: job.cleanup ?? null };
}

/** Refusals of the image itself, whose reason the client gets as the runner gave it. */
const IMAGE_REFUSALS = new Set<DomainError["kind"]>(["too_large", "unsupported_type", "unprocessable"]);

/**
 * A runner's refusal of a job (a status that retrying cannot change): the runner's own error when it
 * refused the image (`image_too_large`, `image_corrupt`, `image_size_mismatch`, ...), else a protocol
 * failure between worker and runner, which is no fault of the client's image.
 */
async function refusalIn(response: Response): Promise<DomainError> {
  const error = fromProblem(response.status, await response.json().catch(() => null));
  if (error && IMAGE_REFUSALS.has(error.kind)) return error;
  return new DomainError({ kind: "upstream", code: "runner_rejected", title: "The runner refused the job", reason: `The runner answered ${response.status} ${error?.code ?? ""}` });
}

/** The Job in a runner's answer to a submit, or null when the answer is not one. */
async function jobIn(response: Response): Promise<RunnerJob | null> {
  const parsed = runnerJobSchema.safeParse(await response.json().catch(() => null));
  return parsed.success ? parsed.data : null;
}

/** How long a runner's limits are trusted before it is asked again, and how long one is not asked again after it did not answer. */
export const LIMITS_TTL_MS = 60_000;
const LIMITS_RETRY_MS = 10_000;
/** The limits call must not hold up an upload: a runner slower than this is not heard. */
const LIMITS_TIMEOUT_MS = 1_000;
/** Per isolate: a runner's limits (null: not heard) and when they were read. */
const heard = new Map<string, { limits: RunnerLimits | null; at: number }>();

/** The strictest of several runners' limits: what every one of them accepts. */
export function strictest(all: readonly RunnerLimits[]): RunnerLimits | null {
  const [first, ...rest] = all;
  if (!first) return null;
  return rest.reduce((a, b) => ({
    maxInputPixels: Math.min(a.maxInputPixels, b.maxInputPixels),
    maxOutputPixels: Math.min(a.maxOutputPixels, b.maxOutputPixels),
    maxBodyBytes: Math.min(a.maxBodyBytes, b.maxBodyBytes),
    scales: a.scales.filter((scale) => b.scales.includes(scale)),
    // They serve one model; a temperature is kept where any of them would use it.
    sampling: a.sampling || b.sampling,
    cleanup: a.cleanup || b.cleanup,
  }), first);
}

export class RunnerPool implements Dispatcher {
  readonly backend = "runner-pool";

  constructor(private readonly options: RunnerPoolOptions) {
    if (options.urls.length === 0) throw new Error("RunnerPool needs at least one runner URL");
  }

  /**
   * What every runner of the pool that serves MODEL_VERSION accepts (`GET /v1/model`: its manifest's
   * limits), read at most once a minute per runner; null when none has been heard.
   */
  async limits(now = Date.now()): Promise<RunnerLimits | null> {
    const all = await Promise.all(
      this.options.urls.map(async (base) => {
        const cached = heard.get(base);
        if (cached && now - cached.at < (cached.limits ? LIMITS_TTL_MS : LIMITS_RETRY_MS)) return cached.limits;
        const limits = await this.readLimits(base);
        heard.set(base, { limits, at: now });
        return limits;
      }),
    );
    return strictest(all.filter((limits) => limits !== null));
  }

  private async readLimits(base: string): Promise<RunnerLimits | null> {
    try {
      const headers = await signRunnerRequest(this.options.secret, "GET", MODEL_PATH, new Uint8Array());
      const response = await fetch(`${base}${MODEL_PATH}`, { headers, signal: AbortSignal.timeout(LIMITS_TIMEOUT_MS) });
      const parsed = runnerModelSchema.safeParse(await response.json().catch(() => null));
      return parsed.success && modelName(parsed.data.model) === this.options.model ? parsed.data.limits : null;
    } catch {
      return null;
    }
  }

  /**
   * A signed call. A body is either bytes or a stream of known sha256 (the input, streamed from R2
   * without being read into memory: the signature covers its stored sha256, which the runner checks).
   */
  private async call(base: string, method: string, pathAndQuery: string, requestId: string | null | undefined, body?: { stream: ReadableStream; sha256: string; contentType: string }): Promise<Response> {
    const headers = await signRunnerRequest(this.options.secret, method, pathAndQuery, body ?? new Uint8Array());
    if (body) headers["content-type"] = body.contentType;
    if (requestId) headers["x-request-id"] = requestId;
    return fetch(`${base}${pathAndQuery}`, {
      method,
      headers,
      body: method === "GET" ? undefined : (body?.stream ?? new Uint8Array()),
      signal: AbortSignal.timeout(this.options.timeoutMs),
    });
  }

  /** The job's input, as a body for one call; null when it is gone (the job ended or was canceled). */
  private async inputBody(send: SendState): Promise<{ stream: ReadableStream; sha256: string; contentType: string } | null> {
    const object = await this.options.bucket.get(send.input.key);
    return object ? { stream: object.body, sha256: send.input.sha256, contentType: send.contentType } : null;
  }

  /** The pool in the order this job tries it. */
  private async order(jobId: string): Promise<string[]> {
    const urls = this.options.urls;
    const start = parseInt((await sha256Hex(jobId)).slice(0, 8), 16) % urls.length;
    return [...urls.slice(start), ...urls.slice(0, start)];
  }

  async submit(job: DispatchJob): Promise<{ runner: string }> {
    const send: SendState = {
      path: createJobPath(job.id, job.options, { width: job.width, height: job.height }),
      input: job.input,
      contentType: job.contentType,
      requestId: job.requestId,
      attempts: 1,
    };
    await this.saveSendState(job.id, send);
    try {
      return await this.send(job.id, send);
    } catch (error) {
      await this.forget(job.id);
      throw error;
    }
  }

  private async saveSendState(jobId: string, send: SendState): Promise<void> {
    await this.options.bucket.put(sendStateKey(jobId), JSON.stringify(send), { httpMetadata: { contentType: "application/json" } });
  }

  private async sendState(jobId: string): Promise<SendState | null> {
    const object = await this.options.bucket.get(sendStateKey(jobId));
    const parsed = sendStateSchema.safeParse(await object?.json().catch(() => null));
    return parsed.success ? parsed.data : null;
  }

  /** The input and its send state are no longer needed once the job has ended (or never started). */
  private async forget(jobId: string): Promise<void> {
    await this.options.bucket.delete([inputKey(jobId), sendStateKey(jobId)]);
  }

  private async send(jobId: string, send: SendState): Promise<{ runner: string }> {
    const failures: string[] = [];
    for (const runner of await this.order(jobId)) {
      const body = await this.inputBody(send);
      if (!body) throw unavailable("input_missing", "The job's input is not in R2");
      let response: Response;
      try {
        response = await this.call(runner, "POST", send.path, send.requestId, body);
      } catch (error) {
        failures.push(`${runner}: ${error instanceof Error ? error.name : "error"}`);
        continue;
      }
      if (response.ok) {
        const answer = await jobIn(response);
        if (answer && modelName(answer.model) === this.options.model) return { runner };
        failures.push(`${runner}: ${answer ? `serves ${modelName(answer.model)}` : "answered no job"}`);
        continue;
      }
      if (!RETRYABLE.has(response.status)) throw refused(await refusalIn(response));
      await response.body?.cancel();
      failures.push(`${runner}: ${response.status}`);
    }
    throw unavailable("no_runner_available", `No runner accepted the job (${failures.join("; ")})`);
  }

  async poll(jobId: string, runner: string, requestId?: string | null): Promise<RemoteState> {
    try {
      return await this.pollOnce(jobId, runner, requestId);
    } catch (error) {
      if (error instanceof DispatchError) throw error;
      // Whatever else goes wrong (a runner unreachable or too slow, an output that cannot be fetched
      // or stored, R2 itself) is this job's trouble, retryable: the caller polls again until the
      // job's deadline, then fails and refunds it; it never escapes as another request's 500.
      throw unavailable("runner_unreachable", `Polling the runner failed: ${String(error)}`);
    }
  }

  private async pollOnce(jobId: string, runner: string, requestId: string | null | undefined): Promise<RemoteState> {
    const response = await this.call(runner, "GET", jobPath(jobId), requestId);
    if (response.status === 404) {
      await response.body?.cancel();
      return this.resend(jobId, runner);
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw unavailable("runner_unreachable", `Runner answered ${response.status}`);
    }
    const parsed = runnerJobSchema.safeParse(await response.json());
    if (!parsed.success) throw unavailable("runner_protocol", "The runner's answer is not a job");
    const state = await remoteState(jobId, parsed.data, this.options.model, (output) => this.copyOutput(runner, jobId, output, requestId));
    if (state.status === "succeeded" || state.status === "failed") await this.forget(jobId);
    return state;
  }

  async cancel(jobId: string, runner: string | null, requestId?: string | null): Promise<void> {
    await this.forget(jobId);
    const runners = runner === null ? await this.order(jobId) : [runner];
    const failures: string[] = [];
    await Promise.all(
      runners.map(async (base) => {
        try {
          const response = await this.call(base, "POST", cancelJobPath(jobId), requestId);
          await response.body?.cancel();
          if (!response.ok) failures.push(`${base}: ${response.status}`);
        } catch (error) {
          failures.push(`${base}: ${error instanceof Error ? error.name : "error"}`);
        }
      }),
    );
    if (failures.length > 0) throw unavailable("runner_unreachable", `The cancel did not reach every runner (${failures.join("; ")})`);
  }

  /**
   * The runner lost the job (it restarted): sends it there again from the input kept in R2, or, with
   * no input left or every attempt spent, reports the job failed (the caller refunds it).
   */
  private async resend(jobId: string, runner: string): Promise<RemoteState> {
    const send = await this.sendState(jobId);
    const body = send && send.attempts < MAX_SENDS ? await this.inputBody(send) : null;
    if (!send || !body) {
      await this.forget(jobId);
      return lost();
    }
    const response = await this.call(runner, "POST", send.path, send.requestId, body);
    if (response.ok) {
      const answer = await jobIn(response);
      if (!answer) throw unavailable("runner_protocol", "The runner's answer to a resend is not a job");
      if (modelName(answer.model) !== this.options.model) {
        await this.forget(jobId);
        return modelMismatch(answer, this.options.model);
      }
      // 202: the job starts again, a send spent. 200: a runner still holds it (behind a load
      // balancer, another replica answered for an owner it still sees alive), so nothing was sent again.
      if (response.status === 202) await this.saveSendState(jobId, { ...send, attempts: send.attempts + 1 });
      return { status: "queued" };
    }
    if (!RETRYABLE.has(response.status)) {
      const { kind, code, title } = await refusalIn(response);
      await this.forget(jobId);
      return { status: "failed", error: { code, title, kind } };
    }
    await response.body?.cancel();
    throw unavailable("runner_unreachable", `Runner answered ${response.status} to a resend`);
  }

  /** Copies one output into R2 unless it is there already (written by the runner, or a previous poll). */
  private async copyOutput(runner: string, jobId: string, output: Output, requestId: string | null | undefined): Promise<void> {
    const existing = await this.options.bucket.head(output.key);
    if (existing?.customMetadata?.sha256 === output.sha256) return;
    const response = await this.call(runner, "GET", outputPath(jobId, output.scale), requestId);
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw unavailable("runner_unreachable", `Output x${output.scale} unavailable (${response.status})`);
    }
    const bytes = await response.arrayBuffer();
    if ((await sha256Hex(bytes)) !== output.sha256) throw unavailable("runner_protocol", "Output bytes do not match their sha256");
    await putResult(this.options.bucket, { key: output.key, contentType: output.contentType, sha256: output.sha256, bytes: bytes.byteLength }, bytes);
  }
}
