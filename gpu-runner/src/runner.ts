import { hostname } from "node:os";
import type { Logger } from "pino";
import type { RunnerConfig } from "./config";
import { discoverModels, manifestLimits, tileOverlap, tileStep } from "./model/manifest";
import { ModelSession } from "./model/session";
import { QueueConsumer } from "./queue/consumer";
import { PullClient } from "./queue/pull-client";
import { Scheduler } from "./scheduler/scheduler";
import { createApp } from "./server/app";
import { JobService } from "./server/jobs";
import { metricsApp, RunnerMetrics } from "./server/metrics";
import { LocalStore } from "./storage/local";
import { S3Store } from "./storage/s3";
import type { ObjectStore } from "./storage/store";

export function createStore(config: RunnerConfig): ObjectStore {
  if (config.HVAR_STORAGE === "local") return new LocalStore(config.HVAR_STORAGE_DIR);
  return new S3Store({
    endpoint: config.HVAR_S3_ENDPOINT as string,
    bucket: config.HVAR_S3_BUCKET as string,
    region: config.HVAR_S3_REGION,
    accessKeyId: config.HVAR_S3_ACCESS_KEY_ID as string,
    secretAccessKey: config.HVAR_S3_SECRET_ACCESS_KEY as string,
  });
}

/** HVAR_REPLICA_ID, else the host and port: a Pod's name is its hostname; runners on one machine differ by port. */
export function replicaId(config: RunnerConfig): string {
  return config.HVAR_REPLICA_ID ?? `${hostname()}:${config.HVAR_RUNNER_PORT}`;
}

/**
 * Everything a serving runner is made of, wired from its configuration: the model (if one is
 * usable), its scheduler, storage, metrics, the job service, the queue consumer (when a queue is
 * configured), the HTTP app and the metrics app. `shutdown()` stops pulling from the queue, refuses new
 * jobs, lets the jobs in flight finish and store their results, then releases the model.
 */
export async function assembleRunner(config: RunnerConfig, secret: string, log: Logger) {
  const discovery = await discoverModels(config.HVAR_MODELS_DIR);
  for (const { dir, reason } of discovery.rejected) log.warn({ dir, reason }, "model rejected");
  const entry = config.HVAR_MODEL ? discovery.models.find((m) => m.manifest.id === config.HVAR_MODEL) : discovery.models[0];
  log.info({ models: discovery.models.map((m) => m.manifest.id), serving: entry?.manifest.id ?? null, dir: config.HVAR_MODELS_DIR }, "models discovered");

  let draining = false;
  let session: ModelSession | undefined;
  let jobs: JobService | undefined;
  let scheduler: Scheduler | undefined;
  let store: ObjectStore | undefined;
  const metrics = new RunnerMetrics({ queuedTiles: () => scheduler?.queuedTiles ?? 0, jobsByStatus: () => jobs?.countByStatus() ?? { queued: 0, running: 0 } });
  if (entry) {
    session = await ModelSession.load(
      entry,
      { device: config.HVAR_DEVICE, cudaDeviceId: config.HVAR_CUDA_DEVICE_ID, cpuThreads: config.HVAR_CPU_THREADS, graphCacheDir: config.HVAR_GRAPH_CACHE_DIR || undefined },
      log,
    );
    scheduler = new Scheduler(
      session,
      {
        batchSize: config.HVAR_BATCH_SIZE,
        memoryBudgetBytes: config.HVAR_MEMORY_BUDGET_MB * 1024 * 1024,
        maxQueuedTiles: config.HVAR_MAX_QUEUED_TILES,
        maxTilesPerSecond: config.HVAR_MAX_TILES_PER_SECOND,
      },
      metrics,
    );
    log.info({ maxBatch: scheduler.maxBatch, maxQueuedTiles: config.HVAR_MAX_QUEUED_TILES, maxTilesPerSecond: config.HVAR_MAX_TILES_PER_SECOND ?? null }, "scheduler ready");
    store = createStore(config);
    jobs = new JobService({
      manifest: entry.manifest,
      scheduler,
      store,
      metrics,
      log,
      // The manifest says what the model is served for; the operator may lower it.
      decode: { maxPixels: manifestLimits(entry.manifest, config.HVAR_MAX_INPUT_PIXELS).maxInputPixels, animated: config.HVAR_ANIMATED },
      overlap: tileOverlap(entry.manifest, config.HVAR_TILE_OVERLAP),
      tileStep: tileStep(entry.manifest, config.HVAR_TILE_STEP),
      memory: { jobBytes: config.HVAR_JOB_MEMORY_MB * 2 ** 20, totalBytes: config.HVAR_JOBS_MEMORY_MB * 2 ** 20 },
      replica: { id: replicaId(config), heartbeatMs: config.HVAR_JOB_HEARTBEAT_MS, staleMs: config.HVAR_JOB_STALE_MS },
    });
  }
  let consumer: QueueConsumer | undefined;
  if (jobs && entry && store && config.HVAR_QUEUE_ACCOUNT_ID && config.HVAR_QUEUE_ID && config.HVAR_QUEUE_API_TOKEN) {
    const client = new PullClient({ api: config.HVAR_QUEUE_API_URL, accountId: config.HVAR_QUEUE_ACCOUNT_ID, queueId: config.HVAR_QUEUE_ID, apiToken: config.HVAR_QUEUE_API_TOKEN });
    consumer = new QueueConsumer({
      client,
      jobs,
      store,
      model: { id: entry.manifest.id, version: entry.manifest.version },
      metrics,
      log: log.child({ component: "queue" }),
      concurrency: config.HVAR_QUEUE_CONCURRENCY,
      visibilityTimeoutMs: config.HVAR_QUEUE_VISIBILITY_TIMEOUT_MS,
      retryDelayS: config.HVAR_QUEUE_RETRY_DELAY_S,
      idleWaitMs: config.HVAR_QUEUE_IDLE_WAIT_MS,
      maxInputBytes: config.HVAR_MAX_BODY_BYTES,
    });
    consumer.start();
    log.info({ queueId: config.HVAR_QUEUE_ID, concurrency: config.HVAR_QUEUE_CONCURRENCY, visibilityTimeoutMs: config.HVAR_QUEUE_VISIBILITY_TIMEOUT_MS }, "pulling jobs from the queue");
  }
  const app = createApp({ discovery, secret, log, maxBodyBytes: config.HVAR_MAX_BODY_BYTES, draining: () => draining, ...(jobs ? { jobs } : {}) });

  async function shutdown(): Promise<void> {
    draining = true;
    // The queue first: no more pulls, and the jobs it holds finish (and are acknowledged) or go back.
    await consumer?.stop();
    await jobs?.drain();
    await session?.release();
  }
  return { app, metricsApp: metricsApp(metrics), shutdown, lost: session?.lost };
}
