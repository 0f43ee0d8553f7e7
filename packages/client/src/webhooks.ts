import { fromBase64, toBase64 } from "./encoding.js";
import type { WebhookEvent } from "./types.js";

/**
 * Verifies the webhooks hvar sends (Standard Webhooks, standardwebhooks.com), with Web Crypto:
 *
 *   webhook-signature = "v1," + base64(HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>"))
 *
 * the key being the base64 part of the API key's `whsec_` secret. The header may list several
 * space-separated signatures (during a secret rotation); one match is enough. The timestamp bounds
 * replays: deliveries older or newer than `toleranceS` are refused. The webhook-id is the same on
 * every retry of one delivery, so receivers drop duplicates by it.
 *
 * @example
 * // Any framework: give it the raw body (before JSON parsing) and the headers.
 * const event = await verifyWebhook(process.env.HVAR_WEBHOOK_SECRET, await request.text(), request.headers);
 * // The event carries the job as it ended: no call back needed.
 * if (event.type === "upscale.succeeded") for (const output of event.data.outputs ?? []) console.log(output.scale, output.url);
 * else if (event.type === "upscale.failed") console.error(event.data.error.code);
 */
export type { UpscaleCanceledEvent, UpscaleFailedEvent, UpscaleSucceededEvent, WebhookEvent } from "./types.js";

/** Five minutes, as Standard Webhooks recommends. */
export const DEFAULT_TOLERANCE_S = 300;

export type WebhookVerificationFailure = "missing_headers" | "invalid_timestamp" | "timestamp_out_of_tolerance" | "invalid_signature" | "invalid_payload";

export class WebhookVerificationError extends Error {
  override readonly name = "WebhookVerificationError";
  constructor(
    readonly reason: WebhookVerificationFailure,
    message: string,
  ) {
    super(message);
  }
}

/** Headers as Fetch (`Headers`) or Node's http module (`IncomingHttpHeaders`, lower-case names) give them. */
export type WebhookHeaders = Headers | Readonly<Record<string, string | readonly string[] | undefined>>;

export interface VerifyOptions {
  toleranceS?: number;
  /** Clock in milliseconds (tests). */
  now?: number;
}

const encoder = new TextEncoder();

function header(headers: WebhookHeaders, name: string): string | null {
  if (headers instanceof Headers) return headers.get(name);
  const value = headers[name];
  return value === undefined ? null : typeof value === "string" ? value : value.join(", ");
}

function bytesOf(body: string | Uint8Array): Uint8Array {
  return typeof body === "string" ? encoder.encode(body) : body;
}

async function mac(secret: string, id: string, timestamp: string, body: Uint8Array): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", fromBase64(secret.replace(/^whsec_/, "")), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const prefix = encoder.encode(`${id}.${timestamp}.`);
  // The body's exact bytes are signed: re-serialized JSON would not match.
  const message = new Uint8Array(prefix.length + body.length);
  message.set(prefix);
  message.set(body, prefix.length);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, message));
}

/** Compares in time independent of where the inputs differ (both are 32-byte MACs). */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return difference === 0;
}

/** The webhook-signature header for a delivery, as the worker computes it (for tests of receivers). */
export async function signWebhook(secret: string, id: string, timestamp: number, body: string | Uint8Array): Promise<string> {
  return `v1,${toBase64(await mac(secret, id, String(timestamp), bytesOf(body)))}`;
}

/** Checks a delivery and returns its event; throws WebhookVerificationError when it is not genuine. */
export async function verifyWebhook(secret: string, body: string | Uint8Array, headers: WebhookHeaders, options: VerifyOptions = {}): Promise<WebhookEvent> {
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !timestamp || !signatures) throw new WebhookVerificationError("missing_headers", "webhook-id, webhook-timestamp and webhook-signature are required");
  if (!/^\d{1,12}$/.test(timestamp)) throw new WebhookVerificationError("invalid_timestamp", "webhook-timestamp is not Unix seconds");
  const toleranceS = options.toleranceS ?? DEFAULT_TOLERANCE_S;
  const nowS = Math.floor((options.now ?? Date.now()) / 1000);
  if (Math.abs(nowS - Number(timestamp)) > toleranceS) {
    throw new WebhookVerificationError("timestamp_out_of_tolerance", `webhook-timestamp is more than ${toleranceS} s from now`);
  }
  const bytes = bytesOf(body);
  const expected = await mac(secret, id, timestamp, bytes);
  const matched = signatures.split(" ").some((entry) => {
    const [version, value] = entry.split(",", 2);
    if (version !== "v1" || !value) return false;
    try {
      return equalBytes(fromBase64(value), expected);
    } catch {
      return false;
    }
  });
  if (!matched) throw new WebhookVerificationError("invalid_signature", "No webhook-signature matches this secret");
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as WebhookEvent;
  } catch {
    throw new WebhookVerificationError("invalid_payload", "The body is not JSON");
  }
}
