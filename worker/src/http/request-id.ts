import type { MiddlewareHandler } from "hono";
import { randomId } from "../security/crypto";
import type { AppEnv } from "../env";

/**
 * Gives every request an id of our own (a client's X-Request-Id is never trusted: it would let
 * one request pose as another in the logs) and returns it in the `X-Request-Id` header. A job that
 * the request creates keeps the id (jobs/start.ts), and every runner call about the job carries it
 * (dispatch/runner-pool.ts), so the worker's and the runner's logs name the job by the id the
 * client was given.
 *
 * @example app.use(requestId())
 */
export function requestId(options: { header?: string } = {}): MiddlewareHandler<AppEnv> {
  const header = (options.header ?? "x-request-id").toLowerCase();
  return async function requestId(c, next) {
    const id = randomId("req");
    c.set("requestId", id);
    await next();
    c.res.headers.set(header, id);
  };
}
