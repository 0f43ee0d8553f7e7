/** Small Web Crypto helpers: encodings, hashes, HMAC, constant-time comparison, random ids and tokens. */

const encoder = new TextEncoder();

export function bytesOf(data: string | ArrayBuffer | Uint8Array): Uint8Array {
  if (typeof data === "string") return encoder.encode(data);
  return data instanceof Uint8Array ? data : new Uint8Array(data);
}

export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  return Array.from(bytesOf(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function toBase64Url(bytes: ArrayBuffer | Uint8Array): string {
  let binary = "";
  for (const b of bytesOf(bytes)) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function toBase64(bytes: ArrayBuffer | Uint8Array): string {
  let binary = "";
  for (const b of bytesOf(bytes)) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** Accepts standard or URL-safe base64, with or without padding. */
export function fromBase64(text: string): Uint8Array {
  const standard = text.replaceAll("-", "+").replaceAll("_", "/");
  return Uint8Array.from(atob(standard.padEnd(Math.ceil(standard.length / 4) * 4, "=")), (ch) => ch.charCodeAt(0));
}

export function randomToken(byteLength: number): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(byteLength)));
}

/** Lower-case ids for jobs and keys: 20 random bytes in base32 without padding. */
export function randomId(prefix: string): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  const bytes = crypto.getRandomValues(new Uint8Array(20));
  return `${prefix}_${Array.from(bytes, (b) => alphabet[b & 31]).join("")}`;
}

export async function sha256(data: string | ArrayBuffer | Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytesOf(data)));
}

export async function sha256Hex(data: string | ArrayBuffer | Uint8Array): Promise<string> {
  return toHex(await sha256(data));
}

export async function hmacSha256(secret: string | Uint8Array, message: string | Uint8Array): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", bytesOf(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, bytesOf(message)));
}

/**
 * Compares secrets without leaking where they differ: both sides are hashed first so the
 * comparison always runs over 32 bytes, whatever the lengths of the inputs.
 */
export async function timingSafeEqual(a: string | Uint8Array, b: string | Uint8Array): Promise<boolean> {
  const [da, db] = await Promise.all([sha256(a), sha256(b)]);
  return crypto.subtle.timingSafeEqual(da, db);
}
