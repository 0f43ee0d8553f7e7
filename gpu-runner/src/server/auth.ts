import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { ProblemError } from "../problem";

/** The worker's clock and the runner's may differ by this much; older signatures are replays. */
export const REPLAY_WINDOW_SECONDS = 300;

export interface HmacAuthOptions {
  secret: string;
  /** Unix seconds; injectable for tests. */
  now?: () => number;
}

/** The string both sides sign (API.md, "Authentication"). */
export function signingInput(method: string, pathAndQuery: string, timestamp: string, body: Uint8Array): string {
  return `${method.toUpperCase()}\n${pathAndQuery}\n${timestamp}\n${createHash("sha256").update(body).digest("hex")}`;
}

/** Headers for a signed request: what the worker's dispatch sends, reused by tests and the bench. */
export function signRequest(secret: string, method: string, pathAndQuery: string, body: Uint8Array, timestamp = Math.floor(Date.now() / 1000)): Record<string, string> {
  const ts = String(timestamp);
  const signature = createHmac("sha256", secret).update(signingInput(method, pathAndQuery, ts, body)).digest("hex");
  return { "X-Hvar-Timestamp": ts, "X-Hvar-Signature": `v1=${signature}` };
}

/**
 * Verifies `X-Hvar-Signature` over method, path and query, timestamp and body hash, and refuses
 * timestamps outside the replay window. Runs before any other work on the request. A replay inside
 * the window is harmless by design: job creation is idempotent by job id.
 *
 * @example app.use("/v1/*", hmacAuth({ secret: process.env.RUNNER_HMAC_SECRET }))
 */
export function hmacAuth(options: HmacAuthOptions): MiddlewareHandler {
  if (options.secret.length < 16) throw new Error("the runner HMAC secret must be at least 16 characters");
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const key = options.secret;

  return async function hmacAuthMiddleware(c, next) {
    const timestamp = c.req.header("x-hvar-timestamp") ?? "";
    const signature = /^v1=([0-9a-f]{64})$/.exec(c.req.header("x-hvar-signature") ?? "")?.[1];
    if (signature === undefined || !/^\d{1,12}$/.test(timestamp)) throw unauthorized("Missing or malformed X-Hvar-Timestamp / X-Hvar-Signature.");
    if (Math.abs(now() - Number(timestamp)) > REPLAY_WINDOW_SECONDS) throw unauthorized("The request timestamp is outside the replay window.");
    const url = new URL(c.req.url);
    const body = new Uint8Array(await c.req.arrayBuffer());
    const expected = createHmac("sha256", key).update(signingInput(c.req.method, url.pathname + url.search, timestamp, body)).digest();
    if (!timingSafeEqual(expected, Buffer.from(signature, "hex"))) throw unauthorized("The request signature does not match.");
    await next();
  };
}

function unauthorized(title: string): ProblemError {
  return new ProblemError(401, "runner_auth", title);
}
