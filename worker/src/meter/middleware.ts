import { DomainError } from "@hvar/contract";
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { problemResponse } from "../http/problem";
import { takeToken } from "./rate-lease";

/**
 * Enforces the caller's rate limit with the token bucket in its KeyMeter (through this isolate's
 * lease of it, meter/rate-lease.ts: no Durable Object call while the lease lasts), and reports it with
 * the RateLimit-Limit / -Remaining / -Reset headers (draft-ietf-httpapi-ratelimit-headers) on
 * every answer, and Retry-After on 429. Runs after `apiKeyAuth`.
 *
 * @example app.post("/v1/upscales", apiKeyAuth({ scope: "upscale" }), rateLimit(), handler)
 */
export function rateLimit(): MiddlewareHandler<AppEnv> {
  return async function rateLimit(c, next) {
    const decision = await takeToken(c.env, c.get("apiKey"));
    const headers = {
      "ratelimit-limit": String(decision.limit),
      "ratelimit-remaining": String(decision.remaining),
      "ratelimit-reset": String(decision.resetS),
    };
    if (!decision.ok) {
      const error = new DomainError({
        kind: "limit_reached",
        code: "rate_limited",
        title: "Too many requests",
        detail: `This key allows ${decision.limit} requests per minute.`,
        retryAfterS: decision.retryAfterS,
      });
      return problemResponse(error, headers);
    }
    await next();
    for (const [name, value] of Object.entries(headers)) c.res.headers.set(name, value);
  };
}
