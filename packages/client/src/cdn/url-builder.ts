import {
  CDN_PATH_PREFIX,
  type CdnOptionsInput,
  UNSIGNED,
  URL_SOURCE_PREFIX,
  formatOptions,
  normalizeCdnOptions,
  normalizeSourceUrl,
  urlSourceSegment,
} from "./grammar.js";
import { signCdnRequest } from "./signature.js";

/**
 * Builds CDN URLs for `<img src>`: the helper customers use on their own servers (it needs the
 * key's CDN secret, which must never reach a browser). Web Crypto only, so it runs on Node 20+,
 * Deno, Bun and Workers. It normalizes and signs exactly as the worker verifies (grammar.ts).
 *
 * @example
 * const src = await buildCdnUrl({
 *   base: "https://img.example.com",
 *   keyId: "key_abcdefghijklmnopqrst",
 *   secret: process.env.HVAR_CDN_SECRET,
 *   source: "https://photos.example.com/cats/tom.jpg",
 *   defaultOrigin: "https://photos.example.com",
 *   options: { scale: 4, format: "auto", width: 1200 },
 *   expiresIn: 7 * 24 * 3600,
 * });
 * // https://img.example.com/cdn/key_.../<sig>/scale=4,format=auto,quality=85,width=1200,fit=scale-down,expires=.../cats/tom.jpg
 */
export interface CdnUrlInput {
  /** Where the hvar worker answers, e.g. "https://img.example.com". */
  base: string;
  keyId: string;
  /** The key's CDN secret (`hvar_cdn_...`); omit for an unsigned URL (keys that allow them). */
  secret?: string;
  /** The original image: an absolute URL under one of the key's CDN origins. */
  source: string;
  /**
   * The key's first CDN origin. Sources under it get the short path form
   * (`.../images/cat.jpg`); others, or all when this is omitted, the `url:<base64url>` form.
   */
  defaultOrigin?: string;
  options?: CdnOptionsInput;
  /** Seconds from now after which the URL stops working (sets `expires`). */
  expiresIn?: number;
  /** Clock for `expiresIn`, in milliseconds (tests). */
  now?: number;
}

export type { CdnOptionsInput } from "./grammar.js";

export async function buildCdnUrl(input: CdnUrlInput): Promise<string> {
  const { expiresIn, now = Date.now() } = input;
  const options = normalizeCdnOptions({
    ...input.options,
    ...(expiresIn === undefined ? {} : { expires: Math.floor(now / 1000) + Math.ceil(expiresIn) }),
  });
  const source = normalizeSourceUrl(input.source);
  const sourceUrl = new URL(source);
  const path = (sourceUrl.pathname + sourceUrl.search).slice(1);
  // A path that is empty or starts with "url:" would read as something else: those take the URL form.
  const pathFits = input.defaultOrigin !== undefined && new URL(input.defaultOrigin).origin === sourceUrl.origin && path !== "" && !path.startsWith(URL_SOURCE_PREFIX);
  const sourceSegment = pathFits ? path : urlSourceSegment(source);
  const signature = input.secret === undefined ? UNSIGNED : await signCdnRequest(input.secret, input.keyId, options, source);
  const base = input.base.replace(/\/+$/, "");
  return `${base}${CDN_PATH_PREFIX}${input.keyId}/${signature}/${formatOptions(options)}/${sourceSegment}`;
}
