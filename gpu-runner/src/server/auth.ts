import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { DomainError, REPLAY_WINDOW_S, SIGNATURE_HEADER, TIMESTAMP_HEADER, signatureHeader, signatureOf, signingInput, timestampOf } from "@hvar/contract";
import type { MiddlewareHandler } from "hono";

export interface HmacAuthOptions {
  secret: string;
  /** Unix seconds; injectable for tests. */
  now?: () => number;
}

/** The HMAC (packages/contract's signing input) of one request, as node:crypto computes it. */
function hmacOf(secret: string, method: string, pathAndQuery: string, timestamp: string, body: Uint8Array): Buffer {
  const bodySha256 = createHash("sha256").update(body).digest("hex");
  return createHmac("sha256", secret).update(signingInput({ method, pathAndQuery, timestamp, bodySha256 })).digest();
}

/** Headers for a signed request: what the worker's dispatch sends, reused by tests and the bench. */
export function signRequest(secret: string, method: string, pathAndQuery: string, body: Uint8Array, timestamp = Math.floor(Date.now() / 1000)): Record<string, string> {
  const ts = String(timestamp);
  return { [TIMESTAMP_HEADER]: ts, [SIGNATURE_HEADER]: signatureHeader(hmacOf(secret, method, pathAndQuery, ts, body).toString("hex")) };
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
    const timestamp = c.req.header(TIMESTAMP_HEADER);
    const seconds = timestampOf(timestamp);
    const signature = signatureOf(c.req.header(SIGNATURE_HEADER));
    if (signature === undefined || timestamp === undefined || seconds === undefined) throw unauthorized(`Missing or malformed ${TIMESTAMP_HEADER} / ${SIGNATURE_HEADER}.`);
    if (Math.abs(now() - seconds) > REPLAY_WINDOW_S) throw unauthorized("The request timestamp is outside the replay window.");
    const url = new URL(c.req.url);
    const body = new Uint8Array(await c.req.arrayBuffer());
    const expected = hmacOf(key, c.req.method, url.pathname + url.search, timestamp, body);
    if (!timingSafeEqual(expected, Buffer.from(signature, "hex"))) throw unauthorized("The request signature does not match.");
    await next();
  };
}

function unauthorized(title: string): DomainError {
  return new DomainError({ kind: "unauthenticated", code: "runner_auth", title });
}
