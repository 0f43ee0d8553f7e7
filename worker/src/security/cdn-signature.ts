import type { CdnOptions } from "../../../packages/client/src/cdn/grammar.js";
import { signCdnRequest } from "../../../packages/client/src/cdn/signature.js";
import { bytesOf, timingSafeEqual } from "./crypto";

/**
 * Verifies CDN URL signatures. The scheme is shared with customers, who sign with the client
 * package's helper (packages/client/src/cdn/signature.ts); the worker verifies with that very code,
 * so both sides sign the same normalized text. Constant-time: how much of a forged signature
 * matches is not observable.
 */
export async function verifyCdnSignature(secret: string, keyId: string, options: CdnOptions, sourceUrl: string, signature: string): Promise<boolean> {
  const expected = await signCdnRequest(secret, keyId, options, sourceUrl);
  return timingSafeEqual(bytesOf(signature), bytesOf(expected));
}
