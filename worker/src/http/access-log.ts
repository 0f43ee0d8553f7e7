import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { loggablePath } from "./log-path";

/**
 * One JSON line per request. Only the path is logged, with a CDN URL's signature redacted
 * (loggablePath): query strings carry URL signatures and headers carry keys, so neither appears;
 * the caller is named by key id, never by secret.
 *
 * @example app.use(accessLog())
 */
export function accessLog(options: { write?: (line: string) => void } = {}): MiddlewareHandler<AppEnv> {
  const write = options.write ?? ((line: string) => console.log(line));
  return async function accessLog(c, next) {
    const start = Date.now();
    await next();
    write(
      JSON.stringify({
        level: c.res.status >= 500 ? "error" : "info",
        requestId: c.get("requestId"),
        method: c.req.method,
        path: loggablePath(c.req.url),
        status: c.res.status,
        ms: Date.now() - start,
        keyId: c.get("apiKey")?.id,
      }),
    );
  };
}
