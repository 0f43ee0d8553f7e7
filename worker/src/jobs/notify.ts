import { z } from "@hono/zod-openapi";
import { configOf } from "../config";
import { jobErrorSchema } from "../contract";
import type { Bindings } from "../env";
import type { JobRecord } from "../storage/jobs";
import { attemptDelivery, deliveryOf, enqueueWebhook } from "../webhooks/deliver";
import { jobResourceSchema, toResource } from "./resource";

/**
 * Webhooks on completion: a job with a webhook_url gets one event when it ends, which carries the
 * job as GET /v1/upscales/{id} shows it then (as Replicate's webhooks carry the prediction): its
 * outputs with signed URLs, sizes and content types, its usage, or its error, so that a receiver
 * needs no call back. The URLs are signed when the event is made and stay valid for
 * RESULT_URL_TTL_S, longer than the retries last (webhooks/deliver.ts).
 *
 * The delivery is enqueued in D1 before the job's status changes, so a worker that dies in between
 * still leaves it for the cron trigger; it is then tried at once after the answer when the caller
 * can defer work.
 */
export type Defer = (work: Promise<unknown>) => void;

const ended = { timestamp: z.iso.datetime().openapi({ description: "When the job ended" }) };

export const upscaleSucceededEventSchema = z
  .object({
    type: z.literal("upscale.succeeded"),
    ...ended,
    data: jobResourceSchema.extend({
      status: z.literal("succeeded"),
      outputs: jobResourceSchema.shape.outputs.unwrap(),
      urlsExpireAt: jobResourceSchema.shape.urlsExpireAt.unwrap(),
    }),
  })
  .openapi("UpscaleSucceededEvent", { description: "The job's outputs (signed URLs valid until `urlsExpireAt`, sizes, content types) and usage" });

export const upscaleFailedEventSchema = z
  .object({
    type: z.literal("upscale.failed"),
    ...ended,
    data: jobResourceSchema.extend({ status: z.literal("failed"), error: jobErrorSchema }),
  })
  .openapi("UpscaleFailedEvent", { description: "The job's error; nothing was billed" });

export const upscaleCanceledEventSchema = z
  .object({
    type: z.literal("upscale.canceled"),
    ...ended,
    data: jobResourceSchema.extend({ status: z.literal("canceled") }),
  })
  .openapi("UpscaleCanceledEvent", { description: "The job as it was canceled (POST /v1/upscales/{id}/cancel); nothing was billed" });

export const webhookEventSchema = z.discriminatedUnion("type", [upscaleSucceededEventSchema, upscaleFailedEventSchema, upscaleCanceledEventSchema]);
export type WebhookEvent = z.infer<typeof webhookEventSchema>;

/**
 * Enqueues the completion event of `job`, given as it ends (succeeded with its outputs, failed
 * with its error, or canceled). Idempotent: one delivery per job.
 */
export async function enqueueCompletion(env: Bindings, job: JobRecord, now = Date.now()): Promise<void> {
  if (!job.webhookUrl || job.status === "queued" || job.status === "running") return;
  // Jobs from before origins were recorded (migrations/0007) get result paths instead of URLs.
  const data = await toResource(job, job.origin ?? "", configOf(env), now);
  const event = { type: `upscale.${job.status}`, timestamp: new Date(now).toISOString(), data };
  await enqueueWebhook(env.DB, { jobId: job.id, keyId: job.keyId, url: job.webhookUrl, payload: JSON.stringify(event) });
}

/** Tries the job's enqueued delivery after the answer; without `defer`, the cron trigger sends it. */
export function sendSoon(db: D1Database, job: JobRecord, defer: Defer | undefined): void {
  if (!job.webhookUrl || !defer) return;
  defer(deliveryOf(db, job.id).then((delivery) => delivery && attemptDelivery(db, delivery.id)));
}
