import { DomainError } from "@hvar/contract";
import type { Context } from "hono";
import { RETAINED_304_HEADERS } from "hono/etag";
import type { AppEnv } from "../env";
import { onError, problemResponse } from "../http/problem";
import type { VariantMetadata } from "./cache";
import { CdnGrammarError } from "./grammar";

/**
 * Answers for `<img src>`: images with strong ETags and cache headers (Hono's etag middleware turns
 * them into 304s for If-None-Match, keeping NOT_MODIFIED_HEADERS), and errors that an embedded
 * image can live with. An error keeps its status and problem+json body (for people with curl) and
 * adds its code in `X-Hvar-Cdn: err=<code>` (as Cloudflare's `Cf-Resized: err=...`), which shows in
 * the browser's network panel; with `onerror=redirect`, an error past the security checks becomes
 * a 302 to the original image instead, so the page still shows a picture.
 */
export const CDN_HEADER = "x-hvar-cdn";
const INPUT_HEADER = "x-hvar-input";
const OUTPUT_HEADER = "x-hvar-output";
const CACHE_HEADER = "x-hvar-cache";

/** What a 304 keeps of the image's headers: the standard ones, CORS, and hvar's own. */
export const NOT_MODIFIED_HEADERS = [...RETAINED_304_HEADERS, "access-control-allow-origin", CACHE_HEADER, CDN_HEADER, INPUT_HEADER, OUTPUT_HEADER];

/** The response stored at the edge: everything that is the same for every request of the variant. */
export function storedResponse(body: ReadableStream, contentType: string, metadata: VariantMetadata, maxAgeS: number): Response {
  const headers = new Headers({
    "content-type": contentType,
    etag: `"${metadata.sha256}"`,
    "cache-control": `public, max-age=${maxAgeS}`,
    [INPUT_HEADER]: `${metadata.inputWidth}x${metadata.inputHeight}`,
    [OUTPUT_HEADER]: `${metadata.width}x${metadata.height}`,
  });
  return new Response(body, { headers });
}

/** The sizes an edge-cached response carries, for the ledger row of a cache hit. */
export function sizesOf(response: Response): { input: [number, number]; output: [number, number] } {
  const size = (value: string | null): [number, number] => {
    const [w = 0, h = 0] = (value ?? "0x0").split("x").map(Number);
    return [w, h];
  };
  return { input: size(response.headers.get(INPUT_HEADER)), output: size(response.headers.get(OUTPUT_HEADER)) };
}

export interface Delivery {
  cache: "hit" | "miss";
  /** Browsers may keep the image this long, but not past the URL's own expiry. */
  maxAgeS: number;
  /** `format=auto`: the bytes depend on Accept. */
  varyOnAccept: boolean;
}

/** The per-request answer made from a stored response: freshness, Vary, cache state. */
export function deliver(stored: Response, delivery: Delivery): Response {
  const headers = new Headers(stored.headers);
  headers.set("cache-control", `public, max-age=${Math.max(0, delivery.maxAgeS)}`);
  headers.set("access-control-allow-origin", "*");
  headers.set(CACHE_HEADER, delivery.cache);
  headers.set(CDN_HEADER, "ok");
  if (delivery.varyOnAccept) headers.set("vary", "Accept");
  return new Response(stored.body, { status: 200, headers });
}

/** Any failure of a CDN request as its answer; `redirectTo` is set once the request was authorized. */
export function cdnError(c: Context<AppEnv>, error: unknown, redirectTo: string | null): Response {
  const response =
    error instanceof CdnGrammarError
      ? problemResponse(new DomainError({ kind: "invalid_input", code: error.code, title: "The CDN URL is malformed", detail: error.message }))
      : onError(error instanceof Error ? error : new Error(String(error)), c);
  const code = codeOf(error);
  if (redirectTo) {
    response.body?.cancel().catch(() => undefined);
    return new Response(null, { status: 302, headers: { location: redirectTo, "cache-control": "no-store", [CDN_HEADER]: `err=${code}; redirect` } });
  }
  response.headers.set("cache-control", "no-store");
  response.headers.set("access-control-allow-origin", "*");
  response.headers.set(CDN_HEADER, `err=${code}`);
  return response;
}

function codeOf(error: unknown): string {
  if (error instanceof CdnGrammarError) return error.code;
  if (error instanceof DomainError) return error.code;
  return "internal_error";
}
