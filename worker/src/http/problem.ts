import { PROBLEM_CONTENT_TYPE, type Problem as ContractProblem, problemBody } from "@hvar/contract";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "../env";
import { loggablePath } from "./log-path";

/**
 * Errors are RFC 9457 problem+json with a stable machine-readable `code` (packages/contract's
 * problem shape, which the runner answers too): clients branch on the code, people read the title
 * and detail.
 */
export type Problem = ContractProblem<ContentfulStatusCode>;

export function problemResponse(problem: Problem, headers?: HeadersInit): Response {
  const response = new Response(JSON.stringify(problemBody(problem)), { status: problem.status, headers });
  response.headers.set("content-type", PROBLEM_CONTENT_TYPE);
  return response;
}

/** Throw from any handler or middleware; `onError` turns it into the response. */
export class ProblemError extends HTTPException {
  constructor(readonly problem: Problem, headers?: HeadersInit) {
    super(problem.status, { res: problemResponse(problem, headers), message: problem.title });
  }
}

export function notFound(c: Context): Response {
  return problemResponse({
    status: 404,
    code: "not_found",
    title: "No such resource",
    detail: `${c.req.method} ${new URL(c.req.url).pathname} does not exist.`,
  });
}

export function onError(error: Error, c: Context<AppEnv>): Response {
  if (error instanceof HTTPException) {
    const response = error.getResponse();
    if (response.headers.get("content-type") === PROBLEM_CONTENT_TYPE) return response;
    return problemResponse({ status: error.status, code: "http_error", title: error.message || "Request failed" });
  }
  // Unknown failures are logged with the request path only: bodies and headers may hold secrets.
  console.error(JSON.stringify({ level: "error", requestId: c.get("requestId"), path: loggablePath(c.req.url), error: String(error) }));
  return problemResponse({ status: 500, code: "internal_error", title: "Internal error" });
}
