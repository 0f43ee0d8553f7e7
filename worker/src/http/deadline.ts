import { DomainError } from "@hvar/contract";
import type { MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { timeout } from "hono/timeout";
import type { AppEnv } from "../env";
import { problemResponse } from "./problem";

/**
 * Answers 504 `timeout` when a request runs past `ms`: Hono's timeout middleware, with the answer
 * as a problem. The bound sits above the longest honoured `Prefer: wait`, so it only catches what is
 * stuck (a slow binding, a runner that stopped reading).
 *
 * @example app.use("/v1/*", deadline({ ms: 90_000 }))
 */
export function deadline(options: { ms: number }): MiddlewareHandler<AppEnv> {
  if (!(options.ms > 0)) throw new Error("deadline: ms must be positive");
  // Hono's timeout throws an HTTPException; it carries the problem as its response. A new one each
  // time: a Response body can be read only once.
  return timeout(options.ms, () => {
    const response = problemResponse(new DomainError({ kind: "timeout", code: "timeout", title: "The request took too long" }));
    return new HTTPException(504, { res: response });
  });
}
