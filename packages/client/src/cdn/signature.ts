import { type CdnOptions, formatOptions } from "./grammar.js";

/**
 * CDN URL signatures: base64url(HMAC-SHA256(key's CDN secret, payload)) with
 *
 *   payload = "hvar-cdn-v1" \n <key id> \n <normalized options> \n <normalized source URL>
 *
 * The key id is inside the payload so that a signature cannot move to another key, and the
 * options and source are signed in their normalized form, so every spelling of one request has
 * one signature. The version tag lets the payload change later without ambiguity.
 *
 * Shared with the customer helper (url-builder.ts), so it uses Web Crypto alone (Node 20+, Deno,
 * Bun, Workers, browsers) and nothing Workers-specific; verification lives in the worker (worker/src/security/cdn-signature.ts).
 */
const VERSION = "hvar-cdn-v1";

export function signingPayload(keyId: string, options: CdnOptions, sourceUrl: string): string {
  return [VERSION, keyId, formatOptions(options), sourceUrl].join("\n");
}

function base64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export async function signCdnRequest(secret: string, keyId: string, options: CdnOptions, sourceUrl: string): Promise<string> {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(signingPayload(keyId, options, sourceUrl)));
  return base64Url(new Uint8Array(mac));
}
