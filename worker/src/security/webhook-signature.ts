import { Webhook, WebhookVerificationError } from "standardwebhooks";

/**
 * Webhook signatures both ways, by Standard Webhooks (standardwebhooks.com) and its reference
 * library: headers webhook-id, webhook-timestamp (Unix seconds) and
 *
 *   webhook-signature = "v1," + base64(HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>"))
 *
 * the key being the base64 part of a "whsec_" secret. The worker signs its deliveries so (each API
 * key has its own secret; packages/client verifies them), and Replicate signs its callbacks so.
 */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  return new Webhook(secret).sign(id, new Date(timestamp * 1000), body);
}

/**
 * True for a genuine, recent Replicate callback: one of the space-separated signatures matches
 * (constant-time), and the timestamp is within five minutes of now, which bounds replays.
 */
export function verifyReplicateWebhook(headers: Headers, body: string, secret: string): boolean {
  try {
    // The body is only checked here; the caller reads it (a signed body need not be JSON).
    new Webhook(secret).verify(body, Object.fromEntries(headers), { jsonParse: false });
    return true;
  } catch (error) {
    if (error instanceof WebhookVerificationError) return false;
    throw error;
  }
}
