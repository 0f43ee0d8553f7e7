/**
 * The grammar of CDN URLs: one parser and one normalizer, shared by the worker and by the
 * customers' URL builder (url-builder.ts), so that both sides sign exactly the same text.
 *
 *   /cdn/<key id>/<signature>/<options>/<source>
 *
 * - key id: the API key the image is billed to (`key_...`).
 * - signature: base64url HMAC-SHA256 (signature.ts), or `unsigned` for keys that allow it.
 * - options: comma-separated `name=value` in the manner of Cloudflare's `/cdn-cgi/image/`,
 *   e.g. `scale=4,format=auto,width=800`. Unknown and repeated options are refused; the
 *   normalized form (defaults filled in, aliases resolved, `dpr` folded into the size) is what is
 *   signed and what names the result, so equivalent spellings share one signature and one cache key.
 * - source: a path under the key's first listed origin (`images/cat.jpg`, with the request's query
 *   string), or `url:<base64url of an absolute URL>` for any listed origin. A path whose first
 *   segment starts with `url:` must therefore use the URL form.
 *
 * No Workers APIs and no dependencies here: the customer helper runs on Node, Deno and browsers.
 * Scales, formats and the default quality are hvar's one vocabulary (packages/contract), which the
 * client's build carries along.
 */
import { AUTO_CLEANUP, DEFAULT_QUALITY, MAX_QUALITY, MIN_QUALITY, OUTPUT_FORMATS, SCALES, type Scale, isScale } from "../../../contract/src/vocabulary.js";

export const CDN_PATH_PREFIX = "/cdn/";
export const UNSIGNED = "unsigned";
export const URL_SOURCE_PREFIX = "url:";

export type CdnScale = Scale;
export const CDN_FORMATS = ["auto", ...OUTPUT_FORMATS] as const;
export type CdnFormat = (typeof CDN_FORMATS)[number];
/** Cloudflare's fits, applied after super-resolution; `scale-down` never enlarges further. */
export const CDN_FITS = ["scale-down", "contain", "cover", "crop", "pad"] as const;
export type CdnFit = (typeof CDN_FITS)[number];

export const DEFAULT_SCALE: CdnScale = 2;
/** The largest final width or height (after `dpr`). */
export const MAX_DIMENSION = 8192;
const MAX_DPR = 4;

/** Options as people write them: every field optional, aliases and `dpr` allowed. */
export interface CdnOptionsInput {
  scale?: number;
  /** Only the cleaned x1 (noise, blur and compression removed, no enlargement): `scale=1`. */
  denoise?: boolean;
  /** How strongly the model cleans the source before upscaling, 0 to 1 (1 for a badly damaged photo, 0 keeps a clean photo's grain), or `auto` (the default: 1 for a plainly noisy photo, 0.5 for one sent as a JPEG of quality 90-94, 0.25 from 95, else 0.75). */
  cleanup?: number | typeof AUTO_CLEANUP;
  format?: string;
  quality?: number;
  width?: number;
  height?: number;
  fit?: string;
  /** Device pixel ratio: multiplies width and height. */
  dpr?: number;
  /** Unix seconds after which the URL is refused. */
  expires?: number;
  /** `redirect`: on failure, send the browser to the original image instead of an error. */
  onerror?: string;
}

/** The one normalized form: what is signed, and (without expires/onerror) what names the result. */
export interface CdnOptions {
  scale: CdnScale;
  cleanup: number | typeof AUTO_CLEANUP;
  format: CdnFormat;
  /** Null for PNG, where it means nothing. */
  quality: number | null;
  width: number | null;
  height: number | null;
  /** Null without width and height. */
  fit: CdnFit | null;
  expires: number | null;
  onerror: "redirect" | null;
}

export type SourceRef = { kind: "path"; path: string } | { kind: "url"; url: string };

export interface CdnRequest {
  keyId: string;
  /** Null for `unsigned`. */
  signature: string | null;
  options: CdnOptions;
  source: SourceRef;
}

export type GrammarErrorCode = "invalid_cdn_url" | "invalid_options" | "invalid_source";

export class CdnGrammarError extends Error {
  constructor(
    readonly code: GrammarErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "CdnGrammarError";
  }
}

const KEY_ID = /^key_[a-z2-7]{20}$/;
const SIGNATURE = /^[A-Za-z0-9_-]{43}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const UNSIGNED_INT = /^[0-9]{1,12}$/;
const DECIMAL = /^[0-9]{1,2}(?:\.[0-9]{1,3})?$/;

const ALIASES: Record<string, keyof CdnOptionsInput> = { w: "width", h: "height", q: "quality", f: "format" };
const NAMES: readonly (keyof CdnOptionsInput)[] = ["scale", "denoise", "cleanup", "format", "quality", "width", "height", "fit", "dpr", "expires", "onerror"];
const FLAGS: ReadonlySet<string> = new Set(["denoise"]);

const invalidOptions = (message: string) => new CdnGrammarError("invalid_options", message);
const invalidSource = (message: string) => new CdnGrammarError("invalid_source", message);

function integerValue(name: string, text: string): number {
  if (!UNSIGNED_INT.test(text)) throw invalidOptions(`${name} must be a whole number, not "${text}"`);
  return Number(text);
}

/** The text of one option value as the input field it stands for (ranges are checked by normalize). */
function inputValue(name: keyof CdnOptionsInput, text: string): CdnOptionsInput[keyof CdnOptionsInput] {
  switch (name) {
    case "scale":
      return integerValue(name, text.replace(/^x/i, ""));
    case "quality":
    case "width":
    case "height":
    case "expires":
      return integerValue(name, text);
    case "dpr":
      if (!DECIMAL.test(text)) throw invalidOptions(`dpr must be a number such as 2 or 1.5, not "${text}"`);
      return Number(text);
    case "cleanup":
      if (text.toLowerCase() === AUTO_CLEANUP) return AUTO_CLEANUP;
      if (!DECIMAL.test(text)) throw invalidOptions(`cleanup must be ${AUTO_CLEANUP} or a number from 0 to 1 such as 0.5, not "${text}"`);
      return Number(text);
    case "format":
    case "fit":
    case "onerror":
      return text.toLowerCase();
    case "denoise":
      return true;
  }
}

/** Parses the options segment of a CDN URL into its normalized form. */
export function parseOptions(segment: string): CdnOptions {
  let text: string;
  try {
    text = decodeURIComponent(segment);
  } catch {
    throw invalidOptions("The options are not valid percent-encoding");
  }
  if (text === "") throw invalidOptions("No options: write at least one, e.g. scale=2");
  const input: Record<string, unknown> = {};
  for (const item of text.split(",")) {
    if (item === "") throw invalidOptions("An empty option (two commas in a row, or a trailing comma)");
    const equals = item.indexOf("=");
    const written = equals < 0 ? item : item.slice(0, equals);
    const value = equals < 0 ? null : item.slice(equals + 1);
    const name = ALIASES[written] ?? NAMES.find((n) => n === written);
    if (!name) throw invalidOptions(`Unknown option "${written}"; known: ${NAMES.join(", ")} (aliases w, h, q, f)`);
    if (name in input) throw invalidOptions(`The option ${name} is given twice`);
    if (FLAGS.has(name) !== (value === null)) {
      throw invalidOptions(FLAGS.has(name) ? `${name} takes no value` : `The option ${name} needs a value (${name}=...)`);
    }
    input[name] = inputValue(name, value ?? "");
  }
  return normalizeCdnOptions(input as CdnOptionsInput);
}

function inRange(name: string, value: number, min: number, max: number, integer = true): number {
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min || value > max) {
    throw invalidOptions(`${name} must be ${integer ? "a whole number " : ""}from ${min} to ${max}, not ${value}`);
  }
  return value;
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  const found = allowed.find((a) => a === value);
  if (!found) throw invalidOptions(`${name} must be one of ${allowed.join(", ")}, not "${value}"`);
  return found;
}

/** Fills in defaults, resolves `denoise`, `jpg` and `dpr`, and refuses contradictions. */
export function normalizeCdnOptions(input: CdnOptionsInput): CdnOptions {
  if (input.denoise && input.scale !== undefined) throw invalidOptions("denoise is scale=1: give one or the other");
  const scale = input.denoise ? 1 : (input.scale ?? DEFAULT_SCALE);
  if (!isScale(scale)) throw invalidOptions(`scale must be ${SCALES.slice(0, -1).join(", ")} or ${SCALES.at(-1)}, not ${scale}`);
  const cleanup = input.cleanup === undefined || input.cleanup === AUTO_CLEANUP ? AUTO_CLEANUP : inRange("cleanup", input.cleanup, 0, 1, false);
  const format = oneOf("format", input.format === "jpg" ? "jpeg" : (input.format ?? "auto"), CDN_FORMATS);
  const quality = input.quality === undefined ? DEFAULT_QUALITY : inRange("quality", input.quality, MIN_QUALITY, MAX_QUALITY);
  const dpr = input.dpr === undefined ? 1 : inRange("dpr", input.dpr, 1, MAX_DPR, false);
  const sized = (name: string, value: number | undefined) =>
    value === undefined ? null : inRange(name, Math.round(inRange(name, value, 1, MAX_DIMENSION) * dpr), 1, MAX_DIMENSION);
  const width = sized("width", input.width);
  const height = sized("height", input.height);
  if (width === null && height === null) {
    if (input.fit !== undefined) throw invalidOptions("fit needs width or height");
    if (input.dpr !== undefined) throw invalidOptions("dpr needs width or height");
  }
  const fit = width === null && height === null ? null : oneOf("fit", input.fit ?? "scale-down", CDN_FITS);
  const expires = input.expires === undefined ? null : inRange("expires", input.expires, 0, 1e11);
  const onerror = input.onerror === undefined ? null : oneOf("onerror", input.onerror, ["redirect"] as const);
  return {
    scale,
    cleanup,
    format,
    quality: format === "png" ? null : quality,
    width,
    height,
    fit,
    expires,
    onerror,
  };
}

/**
 * The canonical text of normalized options, in a fixed order. The default clean-up (`auto`) is not
 * written, so that a URL signed before the option existed keeps its signature (it now means `auto`).
 */
export function formatOptions(options: CdnOptions): string {
  const parts = [`scale=${options.scale}`, ...(options.cleanup === AUTO_CLEANUP ? [] : [`cleanup=${options.cleanup}`]), `format=${options.format}`];
  if (options.quality !== null) parts.push(`quality=${options.quality}`);
  if (options.width !== null) parts.push(`width=${options.width}`);
  if (options.height !== null) parts.push(`height=${options.height}`);
  if (options.fit !== null) parts.push(`fit=${options.fit}`);
  if (options.expires !== null) parts.push(`expires=${options.expires}`);
  if (options.onerror !== null) parts.push(`onerror=${options.onerror}`);
  return parts.join(",");
}

function base64UrlOf(text: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function textOfBase64Url(encoded: string): string {
  const standard = encoded.replaceAll("-", "+").replaceAll("_", "/");
  const bytes = Uint8Array.from(atob(standard.padEnd(Math.ceil(standard.length / 4) * 4, "=")), (ch) => ch.charCodeAt(0));
  return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
}

/**
 * The one spelling of a source URL that is signed and hashed: WHATWG serialization (lower-case
 * host, default port dropped, dot segments resolved), without the fragment, which never reaches
 * the origin. Credentials in the URL are refused: they would be sent to the origin.
 */
export function normalizeSourceUrl(url: string | URL): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalidSource("The source is not an absolute URL");
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw invalidSource("The source must be an http(s) URL");
  if (parsed.username || parsed.password) throw invalidSource("The source URL must not carry credentials");
  parsed.hash = "";
  return parsed.href;
}

/** The source segment(s): a path (with the request's query) or `url:<base64url>`. */
export function parseSource(rest: string, search: string): SourceRef {
  if (rest === "") throw invalidSource("No source after the options");
  if (!rest.startsWith(URL_SOURCE_PREFIX)) return { kind: "path", path: `/${rest}${search}` };
  const encoded = rest.slice(URL_SOURCE_PREFIX.length);
  if (!BASE64URL.test(encoded)) throw invalidSource("A url: source is one segment of base64url (A-Z a-z 0-9 - _, no padding)");
  if (search !== "") throw invalidSource("A url: source carries its query inside the encoded URL, not after it");
  let decoded: string;
  try {
    decoded = textOfBase64Url(encoded);
  } catch {
    throw invalidSource("The url: source is not base64url of UTF-8 text");
  }
  return { kind: "url", url: normalizeSourceUrl(decoded) };
}

/** The source segment for an absolute URL (the form that works for every listed origin). */
export function urlSourceSegment(url: string): string {
  return URL_SOURCE_PREFIX + base64UrlOf(normalizeSourceUrl(url));
}

/** Splits and parses `/cdn/<key id>/<signature>/<options>/<source>`. */
export function parseCdnPath(pathname: string, search: string): CdnRequest {
  if (!pathname.startsWith(CDN_PATH_PREFIX)) throw new CdnGrammarError("invalid_cdn_url", "CDN URLs start with /cdn/");
  const segments = pathname.slice(CDN_PATH_PREFIX.length).split("/");
  const [keyId = "", signature = "", options = ""] = segments;
  if (segments.length < 4) {
    throw new CdnGrammarError("invalid_cdn_url", "A CDN URL is /cdn/<key id>/<signature>/<options>/<source>");
  }
  if (!KEY_ID.test(keyId)) throw new CdnGrammarError("invalid_cdn_url", "The key id is not a key id (key_...)");
  if (signature !== UNSIGNED && !SIGNATURE.test(signature)) {
    throw new CdnGrammarError("invalid_cdn_url", `The signature is 43 characters of base64url, or "${UNSIGNED}"`);
  }
  return {
    keyId,
    signature: signature === UNSIGNED ? null : signature,
    options: parseOptions(options),
    source: parseSource(segments.slice(3).join("/"), search),
  };
}
