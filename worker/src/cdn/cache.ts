import { CONTENT_TYPES, type OutputFormat } from "@hvar/contract";
import { sha256Hex } from "../security/crypto";
import { formatFromAccept } from "../validate/options";
import type { CdnOptions } from "./grammar";

/**
 * Where CDN results live: the edge Cache API in front, R2 behind it.
 *
 * A base is what the model makes of a source: its purge generation, one scale, the clean-up strength
 * and the model version, stored as lossless PNG at `cdn/<source hash>/<base hash>.png`. It is the only part of a
 * CDN image a runner computes (and the only part billed); every width, fit, format and quality of
 * that scale is derived from it at the edge (generate.ts).
 *
 * A variant is one output image: a base and the options that change its pixels or bytes (resolved
 * format, quality, size, fit; not expires or onerror, which change neither). Its hash is its one
 * cache key, shared by every API key and every spelling of the URL; it names the R2 object
 * `cdn/<source hash>/<variant hash>.<ext>` and the edge cache entry. A variant that is its base
 * unchanged (PNG, no size) is stored as the base itself. `format=auto` is resolved from Accept
 * before hashing, so the edge never needs to honour Vary itself (the response still says
 * `Vary: Accept` for browsers and proxies).
 *
 * Purging a source raises its generation in D1 (read on every request, so it applies at once,
 * everywhere): the old variants' keys are then never computed again, and their R2 objects, found
 * by the source hash prefix, are deleted.
 */
export interface Base {
  hash: string;
  scale: CdnOptions["scale"];
  cleanup: CdnOptions["cleanup"];
  r2Key: string;
}

export interface Variant {
  sourceHash: string;
  hash: string;
  format: OutputFormat;
  r2Key: string;
  /** The edge cache key: a URL that never leaves the worker. */
  cacheUrl: string;
  base: Base;
}

/** Custom metadata of a stored variant (R2), also needed on edge hits for the ledger. */
export interface VariantMetadata {
  sha256: string;
  width: number;
  height: number;
  inputWidth: number;
  inputHeight: number;
}

const CACHE_ORIGIN = "https://cdn.hvar.internal";
const R2_PREFIX = "cdn/";

export async function sourceHashOf(sourceUrl: string): Promise<string> {
  return sha256Hex(sourceUrl);
}

export async function generationOf(db: D1Database, sourceHash: string): Promise<number> {
  const generation = await db.prepare("SELECT generation FROM cdn_sources WHERE source_hash = ?").bind(sourceHash).first<number>("generation");
  return generation ?? 0;
}

export interface VariantInput {
  sourceUrl: string;
  sourceHash: string;
  generation: number;
  options: CdnOptions;
  accept: string | undefined;
  modelVersion: string;
}

export async function variantOf({ sourceUrl, sourceHash, generation, options, accept, modelVersion }: VariantInput): Promise<Variant> {
  const format = options.format === "auto" ? formatFromAccept(accept) : options.format;
  const quality = format === "png" ? null : options.quality;
  const { scale, cleanup, width, height, fit } = options;
  // Strength 1, what every URL made before the option was made at, is left out: those results keep their
  // keys. `auto` is written, so results made while the default was a fixed 0.75 are made again.
  const strength = cleanup === 1 ? [] : [cleanup];
  const hash = await sha256Hex(JSON.stringify(["cdn-v1", sourceUrl, generation, scale, format, quality, width, height, fit, modelVersion, ...strength]));
  const baseHash = await sha256Hex(JSON.stringify(["cdn-base-v1", sourceUrl, generation, scale, modelVersion, ...strength]));
  const base: Base = { hash: baseHash, scale, cleanup, r2Key: `${R2_PREFIX}${sourceHash}/${baseHash}.png` };
  const isBase = format === "png" && width === null && height === null;
  return { sourceHash, hash, format, r2Key: isBase ? base.r2Key : `${R2_PREFIX}${sourceHash}/${hash}.${format}`, cacheUrl: `${CACHE_ORIGIN}/${hash}`, base };
}

/** Also the Images binding's output formats. */
export function contentTypeOf(format: OutputFormat): (typeof CONTENT_TYPES)[OutputFormat] {
  return CONTENT_TYPES[format];
}

/** Stores a base (PNG) or a variant, with the metadata `metadataOf` reads back. */
export async function putImage(bucket: R2Bucket, stored: { r2Key: string; format: OutputFormat }, body: ReadableStream | ArrayBuffer | Uint8Array, metadata: VariantMetadata): Promise<void> {
  await bucket.put(stored.r2Key, body, {
    httpMetadata: { contentType: contentTypeOf(stored.format) },
    customMetadata: Object.fromEntries(Object.entries(metadata).map(([name, value]) => [name, String(value)])),
  });
}

export function metadataOf(object: R2Object): VariantMetadata | null {
  const m = object.customMetadata ?? {};
  const numbers = [m.width, m.height, m.inputWidth, m.inputHeight].map(Number);
  if (!m.sha256 || numbers.some((n) => !Number.isInteger(n) || n <= 0)) return null;
  const [width = 0, height = 0, inputWidth = 0, inputHeight = 0] = numbers;
  return { sha256: m.sha256, width, height, inputWidth, inputHeight };
}

export async function edgeMatch(variant: Variant): Promise<Response | undefined> {
  return caches.default.match(variant.cacheUrl);
}

export async function edgePut(variant: Variant, response: Response): Promise<void> {
  await caches.default.put(variant.cacheUrl, response);
}

/** Raises the source's generation and deletes its stored bases and variants; returns both counts. */
export async function purgeSource(db: D1Database, bucket: R2Bucket, sourceUrl: string, now = Date.now()): Promise<{ generation: number; deleted: number }> {
  const sourceHash = await sourceHashOf(sourceUrl);
  const generation = await db
    .prepare(
      `INSERT INTO cdn_sources (source_hash, generation, purged_at) VALUES (?, 1, ?)
       ON CONFLICT (source_hash) DO UPDATE SET generation = generation + 1, purged_at = excluded.purged_at
       RETURNING generation`,
    )
    .bind(sourceHash, now)
    .first<number>("generation");
  let deleted = 0;
  let cursor: string | undefined;
  do {
    const listing = await bucket.list({ prefix: `${R2_PREFIX}${sourceHash}/`, ...(cursor ? { cursor } : {}) });
    const keys = listing.objects.map((o) => o.key);
    if (keys.length > 0) await bucket.delete(keys);
    deleted += keys.length;
    cursor = listing.truncated ? listing.cursor : undefined;
  } while (cursor);
  return { generation: generation ?? 1, deleted };
}
