import { z } from "zod";

/*
 * Cloudflare Queues' HTTP pull-consumer API, as far as this client relies on it. Sources: the guide
 * https://developers.cloudflare.com/queues/configuration/pull-consumers/ and the API reference
 * https://developers.cloudflare.com/api/resources/queues/subresources/messages/ (methods `pull`, `ack`).
 *
 *   POST {api}/accounts/{account_id}/queues/{queue_id}/messages/pull
 *     Authorization: Bearer <API token with Queues read and write>
 *     { "batch_size": n, "visibility_timeout_ms": ms }
 *       batch_size: at most 100 messages; visibility_timeout_ms: how long the messages are leased to
 *       this consumer alone (at most 12 h); after it, a message not acknowledged is delivered again.
 *     200 { "success": true, "errors": [], "messages": [],
 *           "result": { "message_backlog_count": n,
 *                       "messages": [{ "id", "body", "attempts", "timestamp_ms", "lease_id", "metadata" }] } }
 *       message_backlog_count: unacknowledged messages in the queue, leased ones included.
 *       body: typed as a string by the reference; a message sent with contentType "json" (as the worker
 *       sends) comes as its JSON text. (decodeBody also takes the JSON value itself, should it come parsed.)
 *       attempts: deliveries of the message so far, this one included (1 the first time).
 *
 *   POST {api}/accounts/{account_id}/queues/{queue_id}/messages/ack
 *     { "acks": [{ "lease_id" }], "retries": [{ "lease_id", "delay_seconds" }] }
 *       acks: done, removed from the queue. retries: delivered again after delay_seconds; a retry (or
 *       a lease that runs out) counts against the consumer's max_retries, after which the message
 *       goes to its dead_letter_queue (or is dropped without one).
 *     200 { "success": true, "errors": [], "messages": [], "result": { "ackCount", "retryCount", "warnings" } }
 *       warnings: lease ids that were not applied (an expired lease: the message was redelivered).
 *
 * Failures answer `success: false` with `errors: [{ code, message }]`.
 */

export const CLOUDFLARE_API = "https://api.cloudflare.com/client/v4";

const envelope = <T extends z.ZodType>(result: T) =>
  z.object({
    success: z.boolean(),
    errors: z.array(z.object({ code: z.number().optional(), message: z.string() })).default([]),
    result: result.nullable().optional(),
  });

export const pulledMessageSchema = z.object({
  id: z.string(),
  body: z.union([z.string(), z.record(z.string(), z.unknown())]),
  attempts: z.number().int().min(1),
  timestamp_ms: z.number(),
  lease_id: z.string().min(1),
  metadata: z.unknown().optional(),
});
export type PulledMessage = z.infer<typeof pulledMessageSchema>;

/** A json message's value; throws if its body is not JSON. */
export const decodeBody = (message: PulledMessage): unknown => (typeof message.body === "string" ? JSON.parse(message.body) : message.body);

const pullResultSchema = z.object({
  message_backlog_count: z.number().int().nonnegative().optional(),
  messages: z.array(pulledMessageSchema).default([]),
});
const ackResultSchema = z.object({
  ackCount: z.number().int().optional(),
  retryCount: z.number().int().optional(),
  warnings: z.unknown().optional(),
});

export const PullClientOptionsSchema = z.object({
  /** The API's base; the tests point it at a local fake (test/fixtures/queue-pull-fake.ts). */
  api: z.url().default(CLOUDFLARE_API),
  accountId: z.string().min(1),
  queueId: z.string().min(1),
  apiToken: z.string().min(1),
});
export type PullClientOptions = z.input<typeof PullClientOptionsSchema>;

export interface PullBatch {
  /** Unacknowledged messages in the queue when pulled (leased ones included); absent if not reported. */
  backlog: number | undefined;
  messages: PulledMessage[];
}

export interface Settlement {
  acks: string[];
  retries: { leaseId: string; delaySeconds: number }[];
}

/** A failed call; its message never carries the token. */
export class QueueApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "QueueApiError";
  }
}

/** The two calls of the pull-consumer API a runner makes, each answer checked at the boundary. */
export class PullClient {
  private readonly base: string;
  private readonly token: string;

  constructor(
    options: PullClientOptions,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {
    const { api, accountId, queueId, apiToken } = PullClientOptionsSchema.parse(options);
    this.base = `${api.replace(/\/+$/, "")}/accounts/${encodeURIComponent(accountId)}/queues/${encodeURIComponent(queueId)}/messages`;
    this.token = apiToken;
  }

  async pull(batchSize: number, visibilityTimeoutMs: number): Promise<PullBatch> {
    const result = await this.call("pull", { batch_size: batchSize, visibility_timeout_ms: visibilityTimeoutMs }, pullResultSchema);
    return { backlog: result?.message_backlog_count, messages: result?.messages ?? [] };
  }

  /** Acknowledges and retries in one call; answers the lease ids the queue reported as not applied. */
  async settle({ acks, retries }: Settlement): Promise<string[]> {
    const body = { acks: acks.map((lease_id) => ({ lease_id })), retries: retries.map((r) => ({ lease_id: r.leaseId, delay_seconds: r.delaySeconds })) };
    const result = await this.call("ack", body, ackResultSchema);
    const warnings = result?.warnings;
    if (warnings === undefined || warnings === null) return [];
    return Array.isArray(warnings) ? warnings.map(String) : Object.keys(warnings);
  }

  private async call<T extends z.ZodType>(verb: "pull" | "ack", body: unknown, result: T): Promise<z.infer<T> | null | undefined> {
    const response = await this.fetchImpl(`${this.base}/${verb}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${this.token}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    let parsed;
    try {
      parsed = envelope(result).safeParse(JSON.parse(text));
    } catch {
      throw new QueueApiError(response.status, `queue ${verb}: HTTP ${response.status}, not JSON`);
    }
    if (!parsed.success) throw new QueueApiError(response.status, `queue ${verb}: HTTP ${response.status}, unexpected answer: ${z.prettifyError(parsed.error)}`);
    if (!response.ok || !parsed.data.success) {
      throw new QueueApiError(response.status, `queue ${verb}: HTTP ${response.status}: ${parsed.data.errors.map((e) => e.message).join("; ") || "no reason given"}`);
    }
    return parsed.data.result as z.infer<T> | null | undefined;
  }
}
