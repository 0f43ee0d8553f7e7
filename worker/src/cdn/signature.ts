import { bytesOf, hmacSha256, timingSafeEqual, toBase64Url } from "../crypto";
import { type CdnOptions, formatOptions } from "./grammar";

/**
 * CDN URL signatures: base64url(HMAC-SHA256(key's CDN secret, payload)) with
 *
 *   payload = "hvar-cdn-v1" \n <key id> \n <normalized options> \n <normalized source URL>
 *
 * The key id is inside the payload so that a signature cannot move to another key, and the
 * options and source are signed in their normalized form, so every spelling of one request has
 * one signature. The version tag lets the payload change later without ambiguity.
 */
const VERSION = "hvar-cdn-v1";

export function signingPayload(keyId: string, options: CdnOptions, sourceUrl: string): string {
  return [VERSION, keyId, formatOptions(options), sourceUrl].join("\n");
}

export async function signCdnRequest(secret: string, keyId: string, options: CdnOptions, sourceUrl: string): Promise<string> {
  return toBase64Url(await hmacSha256(secret, signingPayload(keyId, options, sourceUrl)));
}

/** Constant-time: how much of a forged signature matches is not observable. */
export async function verifyCdnSignature(secret: string, keyId: string, options: CdnOptions, sourceUrl: string, signature: string): Promise<boolean> {
  const expected = await signCdnRequest(secret, keyId, options, sourceUrl);
  return timingSafeEqual(bytesOf(signature), bytesOf(expected));
}
