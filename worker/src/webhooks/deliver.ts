import { z } from "@hono/zod-openapi";
import { webhookSecretOf } from "../auth/keys";
import { randomId } from "../security/crypto";
import { signWebhook } from "../security/webhook-signature";

/**
 * Webhook deliveries, signed with the API key's secret (Standard Webhooks, security/webhook-signature.ts).
 * A delivery is enqueued once per job in D1, tried at once, then retried with backoff by the cron
 * trigger, one more attempt after each pause below; the webhook-id stays the same on every retry
 * so receivers can drop duplicates.
 */
const BACKOFF_S = [5, 30, 120, 600, 1800, 3600, 6 * 3600] as const;
/** An attempt in flight holds its delivery this long, so the cron and a request never send it twice at once. */
const LEASE_MS = 60_000;
const TIMEOUT_MS = 10_000;

/** Idempotent: a job gets at most one delivery, however often it is concluded. `payload` is the event's JSON. */
export async function enqueueWebhook(db: D1Database, delivery: { jobId: string; keyId: string; url: string; payload: string }, now = Date.now()): Promise<void> {
  await db
    .prepare(
      `INSERT OR IGNORE INTO webhook_deliveries (id, job_id, key_id, url, payload, next_attempt_at, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(randomId("msg"), delivery.jobId, delivery.keyId, delivery.url, delivery.payload, now, now)
    .run();
}

const claimedSchema = z.object({ id: z.string(), key_id: z.string(), url: z.string(), payload: z.string(), attempts: z.number() });

/** Sends one due delivery if nobody else is sending it; true once it is delivered. */
export async function attemptDelivery(db: D1Database, id: string, now = Date.now()): Promise<boolean> {
  const row = await db
    .prepare(
      `UPDATE webhook_deliveries SET next_attempt_at = ?
       WHERE id = ? AND delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= ?
       RETURNING id, key_id, url, payload, attempts`,
    )
    .bind(now + LEASE_MS, id, now)
    .first();
  if (!row) return false;
  const delivery = claimedSchema.parse(row);
  const secret = await webhookSecretOf(db, delivery.key_id);
  let status = 0;
  if (secret) {
    const timestamp = Math.floor(now / 1000);
    try {
      const response = await fetch(delivery.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "webhook-id": delivery.id,
          "webhook-timestamp": String(timestamp),
          "webhook-signature": signWebhook(secret, delivery.id, timestamp, delivery.payload),
        },
        body: delivery.payload,
        signal: AbortSignal.timeout(TIMEOUT_MS),
        redirect: "manual",
      });
      status = response.status;
      await response.body?.cancel();
    } catch {
      status = 0;
    }
  }
  const attempts = delivery.attempts + 1;
  const delivered = status >= 200 && status < 300;
  const backoff = BACKOFF_S[attempts - 1];
  await db
    .prepare(
      `UPDATE webhook_deliveries SET attempts = ?, last_status = ?, delivered_at = ?, gave_up_at = ?, next_attempt_at = ?
       WHERE id = ?`,
    )
    .bind(
      attempts,
      status,
      delivered ? now : null,
      !delivered && (backoff === undefined || !secret) ? now : null,
      now + (backoff ?? 0) * 1000,
      delivery.id,
    )
    .run();
  return delivered;
}

/** The cron trigger's work: every delivery that is due, a batch at a time. */
export async function deliverDue(db: D1Database, now = Date.now(), limit = 50): Promise<number> {
  const { results } = await db
    .prepare(
      `SELECT id FROM webhook_deliveries
       WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`,
    )
    .bind(now, limit)
    .all<{ id: string }>();
  const outcomes = await Promise.all(results.map((r) => attemptDelivery(db, r.id, now)));
  return outcomes.filter(Boolean).length;
}

export async function deliveryOf(db: D1Database, jobId: string): Promise<{ id: string } | null> {
  return db.prepare("SELECT id FROM webhook_deliveries WHERE job_id = ?").bind(jobId).first<{ id: string }>();
}
