// The worker names problem types after their code (packages/contract); other answers get the same shape.
import { problemType } from "../../contract/src/vocabulary.js";
import type { Problem, Upscale } from "./types.js";

/**
 * Every error answer of the API, typed: the problem+json body (RFC 9457) with its stable `code`,
 * which is what programs branch on; `title` and `detail` are for people. Failures that are not
 * answers (DNS, a reset connection) stay the runtime's own errors, from fetch.
 */
export class HvarError extends Error {
  override readonly name = "HvarError";
  readonly status: number;
  readonly code: string;
  readonly type: string;
  readonly title: string;
  readonly detail: string | undefined;
  /** The whole body, extensions included (e.g. `jobId` on a failed job or a reused Idempotency-Key). */
  readonly problem: Problem;
  /** The worker's x-request-id, for support. */
  readonly requestId: string | null;
  /** Seconds from Retry-After (429, 503), when the answer had one. */
  readonly retryAfterS: number | null;

  constructor(problem: Problem, meta: { requestId?: string | null; retryAfterS?: number | null } = {}) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : problem.title);
    this.problem = problem;
    this.status = problem.status;
    this.code = problem.code;
    this.type = problem.type;
    this.title = problem.title;
    this.detail = problem.detail;
    this.requestId = meta.requestId ?? null;
    this.retryAfterS = meta.retryAfterS ?? null;
  }
}


function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Retry-After in seconds; the HTTP-date form is read too, as proxies may send it. */
export function retryAfterOf(headers: Headers, now = Date.now()): number | null {
  const value = headers.get("retry-after");
  if (value === null) return null;
  if (/^\d+$/.test(value.trim())) return Number(value);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - now) / 1000));
}

/**
 * The problem in an error answer. Answers that are not the API's problem+json (a proxy's HTML 502,
 * a truncated body) become a problem with code `http_error`, the code the worker itself uses for
 * errors without one, so callers handle one shape.
 */
export function problemOf(status: number, statusText: string, body: string): Problem {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  if (isRecord(parsed) && typeof parsed.code === "string" && typeof parsed.title === "string") {
    return {
      ...parsed,
      type: typeof parsed.type === "string" ? parsed.type : problemType(parsed.code),
      status: typeof parsed.status === "number" ? parsed.status : status,
      code: parsed.code,
      title: parsed.title,
      ...(typeof parsed.detail === "string" ? { detail: parsed.detail } : {}),
    };
  }
  const detail = body.trim().slice(0, 500);
  return { type: problemType("http_error"), status, code: "http_error", title: statusText || `HTTP ${status}`, ...(detail ? { detail } : {}) };
}

/** Reads an error answer into an HvarError (consumes the body). */
export async function errorFrom(response: Response): Promise<HvarError> {
  const body = await response.text().catch(() => "");
  return new HvarError(problemOf(response.status, response.statusText, body), {
    requestId: response.headers.get("x-request-id"),
    retryAfterS: retryAfterOf(response.headers),
  });
}

/** A job that ended `canceled`, as an error: what POST answers for it (409 `job_canceled`, its jobId). */
export function jobCanceledError(job: Upscale): HvarError {
  return new HvarError({ type: problemType("job_canceled"), status: 409, code: "job_canceled", title: "The job was canceled", jobId: job.id });
}

/**
 * A job that ended `failed`, as an error: the same problem POST with `Prefer: wait` answers for it
 * (502, the job's error code, its jobId), so a failure reads the same however the job was awaited.
 */
export function jobFailedError(job: Upscale): HvarError {
  const code = job.error?.code ?? "job_failed";
  return new HvarError({ type: problemType(code), status: 502, code, title: job.error?.title ?? "The job failed", jobId: job.id });
}
