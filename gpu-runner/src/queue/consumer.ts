import { createHash } from "node:crypto";
import { DomainError, type ErrorKind, type JobError, type Model, type QueueMessage, type RunnerJob, isCanceled, jobQuerySchema, jobRecordKey, queueMessageSchema } from "@hvar/contract";
import type { Logger } from "pino";
import type { JobService } from "../server/jobs";
import type { ObjectStore } from "../storage/store";
import { type PullClient, type PulledMessage, decodeBody } from "./pull-client";

/** How a message left this runner: acknowledged after its job's record was stored, or given back to the queue. */
export type MessageOutcome = "succeeded" | "failed" | "rejected" | "canceled" | "duplicate" | "retried" | "unreadable" | "released";

export interface QueueObserver {
  queueBacklog(messages: number): void;
  queueMessage(outcome: MessageOutcome): void;
}

export interface QueueConsumerOptions {
  client: Pick<PullClient, "pull" | "settle">;
  jobs: Pick<JobService, "get" | "create" | "ended">;
  /** Where the worker put the inputs and where the job records go (R2 through its S3 API in production). */
  store: ObjectStore;
  /** The model this runner serves, named in the records of the jobs it refuses. */
  model: Model;
  metrics: QueueObserver;
  log: Logger;
  /** Messages held at once: the runner pulls only while it holds fewer. */
  concurrency: number;
  /** The lease of a pulled message: longer than the slowest job, or another runner starts it again. */
  visibilityTimeoutMs: number;
  /** The delay before a message given back is delivered again, unless the runner said when (retry-after). */
  retryDelayS: number;
  /** The wait after a pull that found nothing, or failed, before pulling again (doubled after each failure in a row, to a minute). */
  idleWaitMs: number;
  /** The largest input read from storage (HVAR_MAX_BODY_BYTES, as for a body sent over HTTP). */
  maxInputBytes: number;
}

const MAX_FAILURE_WAIT_MS = 60_000;

type Decision = { outcome: MessageOutcome } & ({ ack: true } | { ack: false; delayS: number });

/** Failures the same message may not meet on another try: the image or the job itself is wrong. */
const FINAL_KINDS: ReadonlySet<ErrorKind> = new Set(["invalid_input", "too_large", "unsupported_type", "unprocessable", "not_found", "forbidden", "conflict", "gone"]);

/**
 * Takes jobs from the Cloudflare Queue the worker's queue backend sends to (a pull consumer, so
 * runners anywhere can take them) and runs them through the same JobService as jobs sent over HTTP:
 * the same admission, fairness and memory bounds. A message is acknowledged only once its job's
 * record (`jobs/<id>.json`, after its outputs) is stored, which is what the worker polls for.
 *
 * - A runner that dies mid-job never acknowledges: its lease runs out and the queue delivers the
 *   message again, to any runner; a record already stored makes the redelivery a no-op.
 * - A job refused for what it is (an image that does not decode, or decodes to another size than the
 *   worker billed, or an input whose sha256 is not the message's) gets a `failed` record with the
 *   reason, then is acknowledged: the worker fails (and refunds) it at once.
 * - A job refused for now (a busy runner, storage unreachable) is given back with a delay, which
 *   counts against the queue's max_retries; so does a message no runner of this version can read,
 *   which ends in the dead-letter queue, to be replayed once runners read it.
 * - A canceled job (its input deleted by the worker) does no work and is acknowledged.
 */
export class QueueConsumer {
  private readonly held = new Set<Promise<void>>();
  /** The jobs of held messages that are running here, until they end. */
  private readonly running = new Set<Promise<unknown>>();
  /** The admissions (JobService.create) of held messages under way, settled either way. */
  private readonly admitting = new Set<Promise<void>>();
  private readonly wakers = new Set<() => void>();
  private stopping = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly options: QueueConsumerOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops pulling; resolves once every message held is settled (its job finished, or given back). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake();
    await this.loop;
    while (this.held.size > 0) await Promise.allSettled([...this.held]);
  }

  private async run(): Promise<void> {
    const { client, concurrency, visibilityTimeoutMs, idleWaitMs, metrics, log } = this.options;
    let failures = 0;
    while (!this.stopping) {
      const free = concurrency - this.held.size;
      if (free <= 0) {
        await this.pause();
        continue;
      }
      let batch;
      try {
        batch = await client.pull(free, visibilityTimeoutMs);
      } catch (error) {
        failures++;
        log.warn({ err: error, failures }, "queue pull failed");
        await this.pause(Math.min(MAX_FAILURE_WAIT_MS, idleWaitMs * 2 ** (failures - 1)));
        continue;
      }
      failures = 0;
      if (batch.backlog !== undefined) metrics.queueBacklog(batch.backlog);
      for (const message of batch.messages) this.hold(message);
      if (batch.messages.length === 0) await this.pause(idleWaitMs);
    }
  }

  private hold(message: PulledMessage): void {
    const settled = (this.stopping ? Promise.resolve<Decision>({ outcome: "released", ack: false, delayS: 0 }) : this.decide(message))
      .catch((error: unknown): Decision => {
        this.options.log.error({ err: error, messageId: message.id }, "queue message failed; giving it back");
        return { outcome: "retried", ack: false, delayS: this.options.retryDelayS };
      })
      .then((decision) => this.settle(message, decision))
      .finally(() => {
        this.held.delete(settled);
        this.wake();
      });
    this.held.add(settled);
  }

  private async settle(message: PulledMessage, decision: Decision): Promise<void> {
    const settlement = decision.ack ? { acks: [message.lease_id], retries: [] } : { acks: [], retries: [{ leaseId: message.lease_id, delaySeconds: decision.delayS }] };
    try {
      const notApplied = await this.options.client.settle(settlement);
      // An expired lease: the message went to another runner, which finds the record and acknowledges it.
      if (notApplied.length > 0) this.options.log.warn({ messageId: message.id, attempts: message.attempts }, "queue lease had expired before the message was settled");
    } catch (error) {
      // Not settled: the lease runs out and the message comes back, which the stored record makes harmless.
      this.options.log.warn({ err: error, messageId: message.id }, "queue settle failed");
    }
    this.options.metrics.queueMessage(decision.outcome);
  }

  private async decide(message: PulledMessage): Promise<Decision> {
    const retry = (outcome: MessageOutcome, delayS = this.options.retryDelayS): Decision => ({ outcome, ack: false, delayS });
    let job: QueueMessage;
    try {
      job = queueMessageSchema.parse(decodeBody(message));
    } catch (error) {
      this.options.log.error({ err: error, messageId: message.id, attempts: message.attempts }, "queue message unreadable; giving it back, for the dead-letter queue");
      return retry("unreadable");
    }
    const log = this.options.log.child({ jobId: job.id, requestId: job.requestId ?? undefined, messageId: message.id, attempts: message.attempts });
    const { jobs, store } = this.options;

    const known = await jobs.get(job.id);
    if (known && (known.status === "succeeded" || known.status === "failed")) return { outcome: "duplicate", ack: true };
    if (!known) {
      if (job.input.bytes > this.options.maxInputBytes) {
        return this.refuse(job, { code: "payload_too_large", title: `The image is larger than ${this.options.maxInputBytes} bytes.` }, log);
      }
      const input = await store.get(job.input.key);
      if (!input) {
        log.info("queue job canceled: its input is gone");
        return { outcome: "canceled", ack: true };
      }
      const sha256 = createHash("sha256").update(input.bytes).digest("hex");
      if (sha256 !== job.input.sha256 || input.bytes.length !== job.input.bytes) {
        return this.refuse(job, { code: "input_mismatch", title: "The stored input is not the image the job was sent with (sha256)." }, log);
      }
      const query = jobQuerySchema.parse({
        id: job.id,
        scales: job.scales.join(","),
        format: job.format,
        ...(job.quality === null ? {} : { quality: job.quality }),
        temperature: job.temperature,
        cleanup: job.cleanup,
        size: `${job.input.width}x${job.input.height}`,
      });
      for (;;) {
        const creating = jobs.create(query, input.bytes, log);
        const created = creating.then(
          () => undefined,
          () => undefined,
        );
        this.admitting.add(created);
        try {
          await creating;
          break;
        } catch (error) {
          this.admitting.delete(created);
          if (!(error instanceof DomainError)) throw error;
          if (FINAL_KINDS.has(error.kind)) return this.refuse(job, { code: error.code, title: error.title }, log);
          // Refused for now (memory, the scheduler's queue): while this runner runs jobs of its own
          // from the queue, one of them ending makes room, so wait for it under this lease rather
          // than spend one of the message's retries; one still being admitted may be what holds the
          // memory, so wait for its admission first. Otherwise what fills the runner is not ours.
          const ours = this.running.size > 0 ? this.running : this.admitting;
          if (ours.size > 0 && !this.stopping) {
            await Promise.race(ours);
            continue;
          }
          log.info({ code: error.code }, "queue job refused for now; giving it back");
          return retry("retried", error.retryAfterS ?? this.options.retryDelayS);
        } finally {
          this.admitting.delete(created);
        }
      }
    }
    const ending = jobs.ended(job.id);
    const tracked: Promise<unknown> = ending.catch(() => undefined).finally(() => this.running.delete(tracked));
    this.running.add(tracked);
    const ended = await ending;
    // No record of its end in the store (it could not be written, or another runner holds the job
    // after a lease ran out): another try runs it again, or finds it ended.
    if (ended?.status !== "succeeded" && ended?.status !== "failed") return retry("retried");
    return { outcome: outcomeOf(ended), ack: true };
  }

  /** Stores the job as failed with the reason, so the worker ends it now rather than at its deadline. */
  private async refuse(job: QueueMessage, error: JobError, log: Logger): Promise<Decision> {
    const record: RunnerJob = { id: job.id, status: "failed", model: this.options.model, input: { width: 0, height: 0 }, progress: { tilesDone: 0, tilesTotal: 0 }, runnerMs: 0, error };
    await this.options.store.put(jobRecordKey(job.id), Buffer.from(JSON.stringify(record)), "application/json");
    log.warn({ code: error.code }, "queue job refused");
    return { outcome: "rejected", ack: true };
  }

  /** Waits until `ms` pass, a held message is settled, or stop() is called. */
  private pause(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  private wake(): void {
    for (const done of [...this.wakers]) done();
  }
}

function outcomeOf(job: RunnerJob): MessageOutcome {
  if (job.status === "succeeded") return "succeeded";
  return isCanceled(job) ? "canceled" : "failed";
}
