import { Hono } from "hono";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { MessageOutcome, QueueObserver } from "../queue/consumer";
import type { SchedulerObserver } from "../scheduler/scheduler";

export type JobOutcome = "accepted" | "duplicate" | "rejected" | "succeeded" | "failed" | "canceled" | "taken_over";

/** The runner's Prometheus metrics, in a registry of its own so tests can build many runners. */
export class RunnerMetrics implements SchedulerObserver, QueueObserver {
  readonly registry = new Registry();
  private readonly batchSize: Histogram;
  private readonly batchSeconds: Histogram;
  private readonly tileSeconds: Histogram;
  private readonly jobs: Counter<"outcome">;
  private readonly backlog: Gauge;
  private readonly messages: Counter<"outcome">;

  constructor(gauges: { queuedTiles: () => number; jobsByStatus: () => Record<"queued" | "running", number> }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "hvar_runner_" });
    new Gauge({
      name: "hvar_runner_queue_depth_tiles",
      help: "Tiles admitted and waiting for the model, over all jobs (the autoscaling signal).",
      registers,
      collect() {
        this.set(gauges.queuedTiles());
      },
    });
    new Gauge({
      name: "hvar_runner_jobs_in_flight",
      help: "Jobs not yet finished, by status.",
      labelNames: ["status"],
      registers,
      collect() {
        for (const [status, count] of Object.entries(gauges.jobsByStatus())) this.set({ status }, count);
      },
    });
    // Exported by every runner, 0 until one pulls from a queue: the autoscaler reads it as an external
    // metric (infra/k8s/runner-hpa.yaml), and a metric that is missing would stop it from scaling down.
    this.backlog = new Gauge({
      name: "hvar_runner_queue_backlog_messages",
      help: "Unacknowledged messages in the job queue (leased ones included), as the runner's last pull saw them.",
      registers,
    });
    this.backlog.set(0);
    this.messages = new Counter({ name: "hvar_runner_queue_messages_total", help: "Queue messages settled, by outcome.", labelNames: ["outcome"], registers });
    this.jobs = new Counter({ name: "hvar_runner_jobs_total", help: "Job requests by outcome.", labelNames: ["outcome"], registers });
    this.batchSize = new Histogram({ name: "hvar_runner_batch_size", help: "Tiles per model run.", buckets: [1, 2, 4, 8, 16, 32, 64], registers });
    this.batchSeconds = new Histogram({ name: "hvar_runner_batch_seconds", help: "Duration of one model run.", buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30], registers });
    this.tileSeconds = new Histogram({
      name: "hvar_runner_tile_seconds",
      help: "Model time per tile (batch duration divided by its tiles).",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
  }

  batch(tiles: number, seconds: number): void {
    this.batchSize.observe(tiles);
    this.batchSeconds.observe(seconds);
    this.tileSeconds.observe(seconds / tiles);
  }

  job(outcome: JobOutcome): void {
    this.jobs.inc({ outcome });
  }

  queueBacklog(messages: number): void {
    this.backlog.set(messages);
  }

  queueMessage(outcome: MessageOutcome): void {
    this.messages.inc({ outcome });
  }
}

/**
 * `GET /metrics` alone, for its own listener (HVAR_METRICS_PORT): the API's port carries only
 * health and signed routes, and the scrape port stays inside the cluster (the Service does not route it).
 */
export function metricsApp(metrics: RunnerMetrics) {
  return new Hono().get("/metrics", async (c) => c.text(await metrics.registry.metrics(), 200, { "Content-Type": metrics.registry.contentType }));
}
