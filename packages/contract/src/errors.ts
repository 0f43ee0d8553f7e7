/**
 * The one error of hvar's domain, in the worker and in the runner alike: what went wrong as a stable
 * machine-readable `code` (clients branch on it), a `title` and `detail` people read, and a `kind`
 * that says whose trouble it is. Domain code (jobs, dispatch, storage, security, image decoding,
 * tiling, scheduling) throws these and knows nothing of HTTP; the edge of each service turns one
 * into problem+json with problem.ts's mapping from kind to status, the only such mapping there is.
 *
 * Anything thrown that is not a DomainError is a bug, answered as a 500 without details.
 *
 * @example throw new DomainError({ kind: "not_found", code: "job_not_found", title: "No such upscale" })
 */

/** Whose trouble an error is, and so how either service answers it (problem.ts: one status per kind). */
export const ERROR_KINDS = [
  /** The request is malformed (a header, a query, a body that is no image). */
  "invalid_input",
  "unauthenticated",
  "forbidden",
  "not_found",
  /** It existed and is no more (a deleted or expired upscale's results). */
  "gone",
  /** The request contradicts the state of things (an Idempotency-Key used for another request). */
  "conflict",
  /** More bytes than a body may have. */
  "too_large",
  /** An image type the service does not read. */
  "unsupported_type",
  /** A well-formed image the service will not process: corrupt, animated, over a pixel limit, of another size than declared. */
  "unprocessable",
  /** A limit on how much or how often: a key's rate limit or quota, a runner's full queue. Retry later. */
  "limit_reached",
  /** A service hvar depends on (a runner, Replicate, a CDN source) answered badly or failed the job. */
  "upstream",
  /** Nothing can take the work now (no runner, a draining runner, a result still being made). Retry later. */
  "unavailable",
  /** The work took longer than it may. */
  "timeout",
  /** hvar's own fault. */
  "internal",
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export interface DomainErrorInit {
  kind: ErrorKind;
  code: string;
  title: string;
  detail?: string;
  /** When a retry may succeed, in seconds (Retry-After at the edge). */
  retryAfterS?: number;
  /** Members added to the problem body, e.g. `{ jobId }`. */
  extensions?: Record<string, unknown>;
  /** What only the logs may see (a runner's address, a library's message): never in an answer. */
  reason?: string;
  cause?: unknown;
}

export class DomainError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;
  readonly title: string;
  readonly detail: string | undefined;
  readonly retryAfterS: number | undefined;
  readonly extensions: Readonly<Record<string, unknown>>;

  constructor({ kind, code, title, detail, retryAfterS, extensions = {}, reason, cause }: DomainErrorInit) {
    super(reason ?? `${code}: ${title}`, cause === undefined ? undefined : { cause });
    this.name = "DomainError";
    this.kind = kind;
    this.code = code;
    this.title = title;
    this.detail = detail;
    this.retryAfterS = retryAfterS;
    this.extensions = extensions;
  }
}

export const isErrorKind = (value: unknown): value is ErrorKind => ERROR_KINDS.includes(value as ErrorKind);
