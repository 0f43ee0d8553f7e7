import { z } from "zod";
import { type ErrorKind, DomainError } from "./errors.ts";
import { problemType } from "./vocabulary.ts";

/**
 * Errors, from the worker and from the runner alike: RFC 9457 problem+json (PROBLEM_CONTENT_TYPE)
 * with a stable machine-readable `code` that clients branch on, and a `type` URL named after it;
 * people read the title and the detail. Extensions (e.g. `jobId`) ride along.
 */
export const problemSchema = z.object({
  type: z.string(),
  status: z.number().int(),
  code: z.string().describe("Stable machine-readable error code"),
  title: z.string(),
  detail: z.string().optional(),
});

export interface Problem<Status extends number = number> {
  status: Status;
  code: string;
  title: string;
  detail?: string;
  [extension: string]: unknown;
}

/** The body of a problem answer: its `type` first, as RFC 9457 shows it. */
export function problemBody<Status extends number>({ status, code, title, ...rest }: Problem<Status>) {
  return { type: problemType(code), status, code, title, ...rest };
}

/** The one mapping from an error's kind to its HTTP status, for both services. */
export const STATUS_OF_KIND = {
  invalid_input: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  gone: 410,
  conflict: 409,
  too_large: 413,
  unsupported_type: 415,
  unprocessable: 422,
  limit_reached: 429,
  internal: 500,
  upstream: 502,
  unavailable: 503,
  timeout: 504,
} as const satisfies Record<ErrorKind, number>;
export type ProblemStatus = (typeof STATUS_OF_KIND)[ErrorKind];

const KIND_OF_STATUS = new Map(Object.entries(STATUS_OF_KIND).map(([kind, status]) => [status as number, kind as ErrorKind]));

/** The kind of an answer's status (a runner's problem read back by the worker): a 4xx or 5xx hvar does not use is `upstream`. */
export const kindOfStatus = (status: number): ErrorKind => KIND_OF_STATUS.get(status) ?? (status >= 400 && status < 500 ? "invalid_input" : "upstream");

/** An error as its answer: status, headers and problem+json body. */
export function toProblem(error: DomainError): { status: ProblemStatus; headers: Record<string, string>; body: ReturnType<typeof problemBody> } {
  const status = STATUS_OF_KIND[error.kind];
  const headers: Record<string, string> = error.retryAfterS === undefined ? {} : { "retry-after": String(error.retryAfterS) };
  const body = problemBody({ ...error.extensions, status, code: error.code, title: error.title, ...(error.detail === undefined ? {} : { detail: error.detail }) });
  return { status, headers, body };
}

/** A problem answer (a runner's, read by the worker) as the error it reports; null when the body is not a problem. */
export function fromProblem(status: number, body: unknown): DomainError | null {
  const parsed = problemSchema.safeParse(body);
  if (!parsed.success) return null;
  const { code, title, detail } = parsed.data;
  return new DomainError({ kind: kindOfStatus(status), code, title, ...(detail === undefined ? {} : { detail }) });
}
