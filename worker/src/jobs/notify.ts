import type { JobRecord, Outcome } from "../storage/jobs";
import { type WebhookEvent, attemptDelivery, deliveryOf, enqueueWebhook } from "../webhooks/deliver";

/**
 * Webhooks on completion: a job with a webhook_url gets one thin event when it ends (the receiver
 * reads the job for its URLs). The delivery is enqueued in D1 before the job's status changes, so
 * a worker that dies in between still leaves it for the cron trigger; it is then tried at once
 * after the answer when the caller can defer work.
 */
export type Defer = (work: Promise<unknown>) => void;

/** How a job ended, as far as its event tells. */
export type Ending = { status: "succeeded" | "canceled" } | Extract<Outcome, { status: "failed" }>;

/** Enqueues the job's completion event (idempotent: one delivery per job). */
export async function enqueueCompletion(db: D1Database, job: JobRecord, outcome: Ending, now = Date.now()): Promise<void> {
  if (!job.webhookUrl) return;
  const event: WebhookEvent = {
    type: `upscale.${outcome.status}`,
    timestamp: new Date(now).toISOString(),
    data: { id: job.id, status: outcome.status, ...(outcome.status === "failed" ? { error: outcome.error } : {}) },
  };
  await enqueueWebhook(db, { jobId: job.id, keyId: job.keyId, url: job.webhookUrl, event });
}

/** Tries the job's enqueued delivery after the answer; without `defer`, the cron trigger sends it. */
export function sendSoon(db: D1Database, job: JobRecord, defer: Defer | undefined): void {
  if (!job.webhookUrl || !defer) return;
  defer(deliveryOf(db, job.id).then((delivery) => delivery && attemptDelivery(db, delivery.id)));
}
