import type { components, paths, webhooks } from "./openapi.js";

/**
 * The API's shapes, named. Every one is taken from openapi.ts, which is generated from the worker's
 * OpenAPI document, so a change to the API changes these types (and test/client/openapi.test.ts
 * fails until openapi.ts is regenerated).
 */
type Schemas = components["schemas"];

/** An upscale job, as POST /v1/upscales and GET /v1/upscales/{id} answer it. */
export type Upscale = Schemas["Upscale"];
export type UpscaleStatus = Upscale["status"];
/** Tiles of the image through the model so far, while the job runs (`fraction` = tilesDone / tilesTotal). */
export type UpscaleProgress = Schemas["UpscaleProgress"];
/** A page of GET /v1/upscales: the key's upscales, newest first, and the cursor of the next page. */
export type UpscaleList = Schemas["UpscaleList"];
export type UpscaleListQuery = NonNullable<paths["/v1/upscales"]["get"]["parameters"]["query"]>;
/** One result: a signed URL valid until `urlsExpireAt`. */
export type UpscaleOutput = NonNullable<Upscale["outputs"]>[number];
/** The options as the worker normalized them (sorted scales, a concrete format). */
export type NormalizedUpscaleOptions = Schemas["UpscaleOptions"];
export type Scale = NormalizedUpscaleOptions["scales"][number];
export type UpscaleQuery = NonNullable<paths["/v1/upscales"]["post"]["parameters"]["query"]>;
/** The JSON body of an upscale of an image by URL; every option has a default (the generated type lists them as present). */
export type UpscaleFromUrl = Pick<Schemas["UpscaleFromUrl"], "image"> & Partial<Schemas["UpscaleFromUrl"]>;
/** `auto`: AVIF, then WebP, then PNG, by the request's Accept header. */
export type OutputFormat = NonNullable<UpscaleQuery["format"]>;
export type JobError = Schemas["JobError"];
export type Model = Schemas["Model"];

/** What a deployment serves (GET /v1/model): version, scales, upload limits, whether a temperature draws detail. */
export type ServedModel = Schemas["ServedModel"];
export type Usage = Schemas["Usage"];
export type UsageBucket = Schemas["UsageBucket"];
export type UsageQuery = NonNullable<paths["/v1/usage"]["get"]["parameters"]["query"]>;

export type CdnPurgeResult = Schemas["CdnPurgeResult"];

/** RFC 9457 problem+json with the API's stable `code`; extensions (e.g. `jobId`) ride along. */
export type Problem = Schemas["Problem"] & { [extension: string]: unknown };

type WebhookBody<Name extends keyof webhooks> = NonNullable<webhooks[Name]["post"]["requestBody"]>["content"]["application/json"];
/** An upscale succeeded: `data` is the job, with its outputs (signed URLs, sizes, content types) and usage. */
export type UpscaleSucceededEvent = WebhookBody<"upscale.succeeded">;
/** An upscale failed: `data` is the job, with its error. */
export type UpscaleFailedEvent = WebhookBody<"upscale.failed">;
/** An upscale was canceled (`cancel`): `data` is the job; nothing was billed. */
export type UpscaleCanceledEvent = WebhookBody<"upscale.canceled">;
/** The body of a webhook delivery: the job as `get` would answer it when it ended, so no call back is needed. */
export type WebhookEvent = UpscaleSucceededEvent | UpscaleFailedEvent | UpscaleCanceledEvent;
