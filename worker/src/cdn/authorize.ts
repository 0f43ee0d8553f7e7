import { DomainError } from "@hvar/contract";
import { type ApiKey, findCdnKey } from "../auth/keys";
import { verifyCdnSignature } from "../security/cdn-signature";
import { type SourcePolicy, checkSource, resolvePathSource } from "../security/source-policy";
import type { CdnRequest } from "./grammar";

/**
 * Everything that can refuse a CDN request for free and without touching the source, in this
 * order: the key the URL names (it must exist, be live and have the `cdn` scope), the signature or
 * the key's permission for unsigned URLs, then expiry (after the signature, so expiry is not an
 * oracle), then the source policy (security/source-policy.ts).
 */
export interface AuthorizedCdnRequest {
  key: ApiKey;
  source: URL;
  policy: SourcePolicy;
}

const forbidden = (code: string, title: string, detail?: string) =>
  new DomainError({ kind: "forbidden", code, title, ...(detail === undefined ? {} : { detail }) });

/** The key a CDN URL names, usable for CDN URLs. */
async function cdnKeyOf(db: D1Database, keyId: string): Promise<{ key: ApiKey; cdnSecret: string | null }> {
  const found = await findCdnKey(db, keyId);
  if (!found) throw forbidden("unknown_key", "This CDN URL names no API key");
  if (found.key.revokedAt) throw forbidden("revoked_api_key", "This API key was revoked");
  if (!found.key.scopes.includes("cdn")) throw forbidden("insufficient_scope", "This API key lacks a scope", 'CDN URLs need the "cdn" scope.');
  return found;
}

async function checkSignature(request: CdnRequest, key: ApiKey, cdnSecret: string | null, sourceUrl: string, now: number): Promise<void> {
  if (request.signature === null) {
    if (!key.cdnAllowUnsigned) throw forbidden("unsigned_not_allowed", "This API key accepts signed CDN URLs only");
  } else if (!cdnSecret || !(await verifyCdnSignature(cdnSecret, key.id, request.options, sourceUrl, request.signature))) {
    throw forbidden("invalid_signature", "The CDN URL signature is invalid");
  }
  if (request.options.expires !== null && request.options.expires * 1000 <= now) throw forbidden("url_expired", "The CDN URL has expired");
}

/** `insecureOrigins` is ALLOW_INSECURE_ORIGINS. Throws the 403 problem of the first check that fails. */
export async function authorizeCdnRequest(db: D1Database, request: CdnRequest, insecureOrigins: readonly string[], now: number): Promise<AuthorizedCdnRequest> {
  const { key, cdnSecret } = await cdnKeyOf(db, request.keyId);
  const policy: SourcePolicy = { allowed: key.cdnOrigins, insecure: insecureOrigins };
  const sourceUrl = request.source.kind === "url" ? request.source.url : resolvePathSource(request.source.path, policy);
  await checkSignature(request, key, cdnSecret, sourceUrl, now);
  return { key, source: checkSource(sourceUrl, policy), policy };
}
