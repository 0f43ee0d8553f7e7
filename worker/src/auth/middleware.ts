import { DomainError } from "@hvar/contract";
import type { MiddlewareHandler } from "hono";
import { timingSafeEqual } from "../security/crypto";
import type { AppEnv } from "../env";
import { findKeyBySecret, scopeSchema, type Scope } from "./keys";

const BEARER = /^Bearer\s+(\S+)\s*$/i;

function bearerToken(header: string | undefined): string | null {
  return header?.match(BEARER)?.[1] ?? null;
}

/**
 * Authenticates the caller's API key and checks one scope; sets `c.var.apiKey`.
 *
 * @example app.post("/v1/upscales", apiKeyAuth({ scope: "upscale" }), handler)
 */
export function apiKeyAuth(options: { scope: Scope }): MiddlewareHandler<AppEnv> {
  const scope = scopeSchema.parse(options.scope);
  return async function apiKeyAuth(c, next) {
    const secret = bearerToken(c.req.header("authorization"));
    if (!secret) {
      throw new DomainError({ kind: "unauthenticated", code: "missing_api_key", title: "An API key is required", detail: "Send Authorization: Bearer <key>." });
    }
    const key = await findKeyBySecret(c.env.DB, secret);
    if (!key) throw new DomainError({ kind: "unauthenticated", code: "invalid_api_key", title: "Unknown API key" });
    if (key.revokedAt) throw new DomainError({ kind: "forbidden", code: "revoked_api_key", title: "This API key was revoked" });
    if (!key.scopes.includes(scope)) {
      throw new DomainError({
        kind: "forbidden",
        code: "insufficient_scope",
        title: "This API key lacks a scope",
        detail: `This operation needs the "${scope}" scope.`,
      });
    }
    c.set("apiKey", key);
    await next();
  };
}

/**
 * Guards the admin API with ADMIN_SECRET, compared in constant time. With no secret configured
 * the admin API is closed rather than open.
 */
export function adminAuth(): MiddlewareHandler<AppEnv> {
  return async function adminAuth(c, next) {
    const expected = c.env.ADMIN_SECRET;
    const given = bearerToken(c.req.header("authorization"));
    if (!expected || !given || !(await timingSafeEqual(given, expected))) {
      throw new DomainError({ kind: "unauthenticated", code: "admin_unauthorized", title: "Admin credentials required" });
    }
    await next();
  };
}
