/**
 * @hvar/client: the hvar API from any JavaScript runtime with fetch and Web Crypto (Node 20+, Deno,
 * Bun, Workers, browsers), with no dependencies.
 */
export { HvarClient, UpscaleTimeoutError, bytesOf, upscaleFromUrlBody, upscaleQuery } from "./client.js";
export type { HvarClientOptions, ImageInput, ImageUrl, UpscaleOptions, WaitOptions } from "./client.js";
export { HvarError, errorFrom, jobCanceledError, jobFailedError, problemOf, retryAfterOf } from "./errors.js";
export { DEFAULT_TOLERANCE_S, WebhookVerificationError, signWebhook, verifyWebhook } from "./webhooks.js";
export type { VerifyOptions, WebhookHeaders, WebhookVerificationFailure } from "./webhooks.js";
export { buildCdnUrl } from "./cdn/url-builder.js";
export type { CdnOptionsInput, CdnUrlInput } from "./cdn/url-builder.js";
export { CdnGrammarError } from "./cdn/grammar.js";
export type {
  CdnPurgeResult,
  JobError,
  Model,
  NormalizedUpscaleOptions,
  OutputFormat,
  Problem,
  Scale,
  ServedModel,
  Upscale,
  UpscaleCanceledEvent,
  UpscaleFailedEvent,
  UpscaleFromUrl,
  UpscaleList,
  UpscaleListQuery,
  UpscaleOutput,
  UpscaleProgress,
  UpscaleQuery,
  UpscaleSucceededEvent,
  UpscaleStatus,
  Usage,
  UsageBucket,
  UsageQuery,
  WebhookEvent,
} from "./types.js";
/** The generated OpenAPI types, for anything the named ones above do not cover. */
export type { components, paths, webhooks } from "./openapi.js";
