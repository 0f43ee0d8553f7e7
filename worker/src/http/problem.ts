import { DomainError, PROBLEM_CONTENT_TYPE, problemBody, toProblem } from "@hvar/contract";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { AppEnv } from "../env";
import { loggablePath } from "./log-path";

/**
 * The worker's edge for errors: a DomainError (packages/contract, thrown by domain code and
 * middleware alike) becomes problem+json with the status of its kind, the one mapping the runner
 * uses too. An unauthenticated caller is told how to authenticate; anything that is not a DomainError
 * is a bug, logged and answered as a 500 without details.
 */
const CHALLENGE = { "www-authenticate": 'Bearer realm="hvar"' };

export function problemResponse(error: DomainError, headers?: HeadersInit): Response {
  const problem = toProblem(error);
  const response = new Response(JSON.stringify(problem.body), { status: problem.status, headers });
  for (const [name, value] of Object.entries({ ...problem.headers, ...(error.kind === "unauthenticated" ? CHALLENGE : {}) })) response.headers.set(name, value);
  response.headers.set("content-type", PROBLEM_CONTENT_TYPE);
  return response;
}

export function notFound(c: Context): Response {
  return problemResponse(new DomainError({ kind: "not_found", code: "not_found", title: "No such resource", detail: `${c.req.method} ${new URL(c.req.url).pathname} does not exist.` }));
}

export function onError(error: Error, c: Context<AppEnv>): Response {
  if (error instanceof DomainError) return problemResponse(error);
  // Hono's own exceptions (its timeout middleware's, which deadline.ts fills with a problem) keep their status.
  if (error instanceof HTTPException) {
    const response = error.getResponse();
    if (response.headers.get("content-type") === PROBLEM_CONTENT_TYPE) return response;
    const body = problemBody({ status: error.status, code: "http_error", title: error.message || "Request failed" });
    return new Response(JSON.stringify(body), { status: error.status, headers: { "content-type": PROBLEM_CONTENT_TYPE } });
  }
  // Unknown failures are logged with the request path only: bodies and headers may hold secrets.
  console.error(JSON.stringify({ level: "error", requestId: c.get("requestId"), path: loggablePath(c.req.url), error: String(error) }));
  return problemResponse(new DomainError({ kind: "internal", code: "internal_error", title: "Internal error" }));
}
