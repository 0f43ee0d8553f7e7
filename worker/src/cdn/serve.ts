import type { Config } from "../config";
import type { Bindings } from "../env";
import { megapixels, recordCacheHit } from "../jobs/billing";
import type { Defer } from "../jobs/notify";
import { randomId } from "../security/crypto";
import type { AuthorizedCdnRequest } from "./authorize";
import { contentTypeOf, edgeMatch, edgePut, generationOf, metadataOf, sourceHashOf, variantOf } from "./cache";
import { generateVariant } from "./generate";
import type { CdnRequest } from "./grammar";
import { deliver, sizesOf, storedResponse } from "./respond";

/**
 * An authorized CDN request's image: the edge cache, then R2, and only on a miss the source fetch,
 * quota and a runner (generate.ts). Hits are free but counted: one ledger row each, written after
 * the answer.
 */
export interface ServeContext {
  env: Bindings;
  config: Config;
  accept: string | undefined;
  /** The worker's own origin (for backends that call back). */
  origin: string;
  /** The request's X-Request-Id: a job it starts is logged under it. */
  requestId: string;
  defer: Defer;
}

function countHit(ctx: ServeContext, keyId: string, input: [number, number], output: [number, number]): void {
  ctx.defer(recordCacheHit(ctx.env.DB, { jobId: randomId("hit"), keyId, inputMp: megapixels(...input), outputMp: megapixels(...output) }));
}

export async function serveCdnImage(ctx: ServeContext, request: CdnRequest, { key, source, policy }: AuthorizedCdnRequest, now: number): Promise<Response> {
  const { env, config } = ctx;
  const sourceHash = await sourceHashOf(source.href);
  const generation = await generationOf(env.DB, sourceHash);
  const variant = await variantOf({ sourceUrl: source.href, sourceHash, generation, options: request.options, accept: ctx.accept, modelVersion: config.MODEL_VERSION });
  const maxAgeS = request.options.expires === null ? config.CDN_MAX_AGE_S : Math.min(config.CDN_MAX_AGE_S, request.options.expires - Math.floor(now / 1000));
  const delivery = { maxAgeS, varyOnAccept: request.options.format === "auto" };

  const cached = await edgeMatch(variant);
  if (cached) {
    const { input, output } = sizesOf(cached);
    countHit(ctx, key.id, input, output);
    return deliver(cached, { ...delivery, cache: "hit" });
  }

  let object = await env.RESULTS.get(variant.r2Key);
  let counted = false;
  if (!object) {
    ({ counted } = await generateVariant({ env, config, key, source, policy, options: request.options, variant, origin: ctx.origin, requestId: ctx.requestId, defer: ctx.defer }));
    object = await env.RESULTS.get(variant.r2Key);
    if (!object) throw new Error(`variant ${variant.r2Key} was not stored`);
  }
  const metadata = metadataOf(object);
  if (!metadata) throw new Error(`variant ${variant.r2Key} has no metadata`);
  if (!counted) countHit(ctx, key.id, [metadata.inputWidth, metadata.inputHeight], [metadata.width, metadata.height]);

  // As stored: Cloudflare Images may have answered another format than asked (generate.ts, deriveVariant).
  const contentType = object.httpMetadata?.contentType ?? contentTypeOf(variant.format);
  const [forClient, forEdge] = object.body.tee();
  ctx.defer(edgePut(variant, storedResponse(forEdge, contentType, metadata, config.CDN_MAX_AGE_S)));
  const stored = storedResponse(forClient, contentType, metadata, config.CDN_MAX_AGE_S);
  return deliver(stored, { ...delivery, cache: counted ? "miss" : "hit" });
}
