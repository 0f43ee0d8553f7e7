import { DomainError } from "@hvar/contract";
import { createRoute, z } from "@hono/zod-openapi";
import { configOf } from "../config";
import { REPLICATE_WEBHOOK_PATH, replicateBackend } from "../dispatch";
import { openApiRouter, problemResponses } from "../http/openapi";
import { advance } from "../jobs/lifecycle";
import { verifyReplicateWebhook } from "../security/webhook-signature";
import { findByRunner } from "../storage/jobs";

/**
 * Replicate's completion callback: verified (timestamp window, constant-time signature), then the
 * job is advanced exactly as a poll would, so a lost callback costs nothing but latency.
 */
const MAX_BODY_BYTES = 1024 * 1024;

const route = createRoute({
  method: "post",
  path: REPLICATE_WEBHOOK_PATH,
  operationId: "receiveReplicateWebhook",
  summary: "Replicate's completion callback (DISPATCH_BACKEND = replicate)",
  tags: ["backends"],
  security: [{ replicateSignature: [] }],
  description: "Called by Replicate when a prediction completes (signed; REPLICATE_WEBHOOK_SECRET).",
  responses: { 204: { description: "Accepted" }, ...problemResponses(401, 404, 413) },
});

const predictionSchema = z.object({ id: z.string() });

export const replicateWebhook = openApiRouter();
replicateWebhook.openapi(route, async (c) => {
  const config = configOf(c.env);
  const secret = config.REPLICATE_WEBHOOK_SECRET;
  if (!secret) throw new DomainError({ kind: "not_found", code: "not_found", title: "No such resource" });
  if (Number(c.req.header("content-length") ?? 0) > MAX_BODY_BYTES) {
    throw new DomainError({ kind: "too_large", code: "payload_too_large", title: "The webhook body is too large" });
  }
  const body = await c.req.text();
  if (!verifyReplicateWebhook(c.req.raw.headers, body, secret)) {
    throw new DomainError({ kind: "unauthenticated", code: "invalid_webhook_signature", title: "The webhook signature is invalid or stale" });
  }
  let payload: unknown = null;
  try {
    payload = JSON.parse(body);
  } catch {
    // A signed body that is not JSON names no prediction: acknowledged, nothing to do.
  }
  const parsed = predictionSchema.safeParse(payload);
  const backend = replicateBackend(c.env, config);
  const job = parsed.success && backend ? await findByRunner(c.env.DB, backend.backend, parsed.data.id) : null;
  if (job && backend) await advance({ env: c.env, dispatcher: backend, defer: (work) => c.executionCtx.waitUntil(work) }, job);
  return c.body(null, 204);
});
