import { problemBody } from "@hvar/contract";

/**
 * A failure the client caused or must know about, carried to the HTTP edge as problem+json with a
 * stable `code` (packages/contract's problem shape, as the worker's). Anything that is not a
 * ProblemError is a bug and becomes a 500 without details.
 */
export class ProblemError extends Error {
  constructor(
    readonly status: 400 | 401 | 404 | 413 | 415 | 422 | 429 | 503,
    readonly code: string,
    readonly title: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(`${code}: ${title}`);
    this.name = "ProblemError";
  }

  toJSON() {
    return problemBody({ status: this.status, code: this.code, title: this.title });
  }
}
