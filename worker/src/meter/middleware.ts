import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { ProblemError } from "../http/problem";
import { meterOf } from "./client";

/**
 * Enforces the caller's rate limit with the token bucket in its KeyMeter, and reports it with
 * the RateLimit-Limit / -Remaining / -Reset headers (draft-ietf-httpapi-ratelimit-headers) on
 * every answer, and Retry-After on 429. Runs after `apiKeyAuth`.
 *
 * @example app.post("/v1/upscales", apiKeyAuth({ scope: "upscale" }), rateLimit(), handler)
 */
export function rateLimit(): MiddlewareHandler<AppEnv> {
  return async function rateLimit(c, next) {
    const key = c.get("apiKey");
    const meter = meterOf(c.env, key.id);
    const decision = await meter.take(key.rateLimitPerMin);
    const headers = {
      "ratelimit-limit": String(decision.limit),
      "ratelimit-remaining": String(decision.remaining),
      "ratelimit-reset": String(decision.resetS),
    };
    if (!decision.ok) {
      throw new ProblemError(
        { status: 429, code: "rate_limited", title: "Too many requests", detail: `This key allows ${decision.limit} requests per minute.` },
        { ...headers, "retry-after": String(decision.retryAfterS) },
      );
    }
    await next();
    for (const [name, value] of Object.entries(headers)) c.res.headers.set(name, value);
  };
}
