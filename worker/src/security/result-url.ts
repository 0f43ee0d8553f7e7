import { DomainError } from "@hvar/contract";
import { bytesOf, fromBase64, hmacSha256, timingSafeEqual, toBase64Url } from "./crypto";

/**
 * Signed result URLs: `/v1/results/<job>/<file>?exp=<unix>&kid=<key id>&sig=<base64url>`, where
 * sig = HMAC-SHA256(key, path + "\n" + exp + "\n" + kid). Several keys may be configured for
 * rotation: the first one signs, every one verifies, so a retired key is removed only after the
 * URLs it signed have expired.
 */
export type SigningKeys = Record<string, string>;

async function signature(secret: string, path: string, exp: number, kid: string): Promise<string> {
  return toBase64Url(await hmacSha256(fromBase64(secret), `${path}\n${exp}\n${kid}`));
}

export async function signResultPath(path: string, keys: SigningKeys, ttlS: number, now = Date.now()): Promise<string> {
  const [kid, secret] = Object.entries(keys)[0] ?? [];
  if (!kid || !secret) throw new Error("no result signing key configured");
  const exp = Math.floor(now / 1000) + ttlS;
  const query = new URLSearchParams({ exp: String(exp), kid, sig: await signature(secret, path, exp, kid) });
  return `${path}?${query}`;
}

const forbidden = (code: string, title: string) => new DomainError({ kind: "forbidden", code, title });

/** Throws 403 `invalid_signature` or `url_expired`; checks the signature first so expiry is not an oracle. */
export async function verifyResultUrl(url: URL, keys: SigningKeys, now = Date.now()): Promise<void> {
  const exp = Number(url.searchParams.get("exp"));
  const kid = url.searchParams.get("kid") ?? "";
  const sig = url.searchParams.get("sig") ?? "";
  const secret = Object.hasOwn(keys, kid) ? keys[kid] : undefined;
  if (!secret || !Number.isSafeInteger(exp) || !sig) throw forbidden("invalid_signature", "The URL signature is invalid");
  const expected = await signature(secret, url.pathname, exp, kid);
  if (!(await timingSafeEqual(bytesOf(sig), bytesOf(expected)))) throw forbidden("invalid_signature", "The URL signature is invalid");
  if (exp * 1000 <= now) throw forbidden("url_expired", "The URL has expired");
}
