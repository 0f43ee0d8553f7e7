import { SELF } from "cloudflare:test";
import type { IssuedKey, KeySettings } from "../../worker/src/auth/keys";
import { type CdnUrlInput, buildCdnUrl } from "../../worker/src/cdn/url-builder";
import { BASE, newKey } from "./helpers";
import { uniquePath } from "./origin";

/** Helpers shared by the CDN tests: a key with the cdn scope, URLs built by the customer helper. */
export const ORIGIN = "https://images.example";

/** A key for CDN URLs whose first origin is ORIGIN. */
export function cdnKey(settings: Partial<KeySettings> = {}): Promise<IssuedKey> {
  return newKey({ scopes: ["cdn", "usage"], cdnOrigins: [ORIGIN], ...settings });
}

/** A source URL no other test uses. */
export function sourceUrl(name = "photo.png", origin = ORIGIN): string {
  return `${origin}${uniquePath()}/${name}`;
}

/** A signed CDN URL for this key, built exactly as customers build them. */
export function cdnUrl(issued: IssuedKey, source: string, options: CdnUrlInput["options"] = {}, extra: Partial<CdnUrlInput> = {}): Promise<string> {
  return buildCdnUrl({ base: BASE, keyId: issued.key.id, secret: issued.cdnSecret, source, options, ...extra });
}

/** GET as a browser's <img> would (Accept for images, unless given). */
export function get(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return SELF.fetch(url, { headers: { accept: "image/avif,image/webp,image/png,image/*,*/*;q=0.8", ...headers }, redirect: "manual" });
}

/** PNG width and height from the IHDR chunk. */
export function pngSize(bytes: Uint8Array): [number, number] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return [view.getUint32(16), view.getUint32(20)];
}
