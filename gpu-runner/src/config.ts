import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { MAX_INPUT_PIXELS } from "@hvar/contract";
import { z } from "zod";
import { cpusOr, cpusSchema } from "./cpus";
import { CLOUDFLARE_API } from "./queue/pull-client";

const defaultModelsDir = fileURLToPath(new URL("../models", import.meta.url));
const defaultStorageDir = fileURLToPath(new URL("../.data/storage", import.meta.url));
const defaultGraphCacheDir = fileURLToPath(new URL("../.cache/graphs", import.meta.url));
/** The local stack's secrets file, written by `npm start` (scripts/start.sh). */
const devVarsPath = fileURLToPath(new URL("../../.dev.vars", import.meta.url));

const int = (min: number, fallback: number) => z.coerce.number().int().min(min).default(fallback);

/** Runner settings, all from the environment, checked once at start. */
export const RunnerConfigSchema = z
  .object({
    HVAR_RUNNER_HOST: z.string().default("127.0.0.1"),
    HVAR_RUNNER_PORT: z.coerce.number().int().min(0).max(65535).default(8788),
    /** `GET /metrics` listens here, apart from the API (Prometheus' default exporter port); its host is HVAR_RUNNER_HOST's. */
    HVAR_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
    HVAR_MODELS_DIR: z.string().default(defaultModelsDir),
    /** Which discovered model to serve; the first by folder name when unset. */
    HVAR_MODEL: z.string().optional(),
    HVAR_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    /** Signs worker-to-runner requests (API.md). Read from the repository's .dev.vars when unset. */
    RUNNER_HMAC_SECRET: z.string().min(16).optional(),

    /** `auto`: CUDA when onnxruntime has it, else the CPU. `cuda`: refuse to start without it. */
    HVAR_DEVICE: z.enum(["auto", "cuda", "cpu"]).default("auto"),
    HVAR_CUDA_DEVICE_ID: int(0, 0),
    /** The CPUs the runner may use (cpus.ts: the image threads, the encoders' and libuv's threads); the process's cores when unset. */
    HVAR_CPUS: cpusSchema,
    /** CPU intra-op threads; 0 = one per CPU (HVAR_CPUS). */
    HVAR_CPU_THREADS: int(0, 0),
    /** onnxruntime's optimized graphs, written once per model, onnxruntime version, provider and CPU; empty: none kept. */
    HVAR_GRAPH_CACHE_DIR: z.string().default(defaultGraphCacheDir),

    HVAR_BATCH_SIZE: int(1, 8),
    /** Memory the tensors of one batch may take; caps the batch below HVAR_BATCH_SIZE if needed. */
    HVAR_MEMORY_BUDGET_MB: int(1, 2048),
    /**
     * The longest wait of a new job, its own tiles and those run beside it, before it gets 429: in tiles
     * of the model's full side (a fitted tile counts for its share of the area; scheduler.ts). 1024 of
     * hvar's 384-px tiles are the work of 4096 tiles of 192 px, the bound before tiles were fitted.
     */
    HVAR_MAX_QUEUED_TILES: int(1, 1024),
    /**
     * Memory one job may hold (decoded image, blend sums, one scale's image and file; measured by
     * bench/runner/job-memory.ts): a job over it gets 413 job_too_large. The largest input at x1, x2
     * and x4 with alpha needs about 1.9 GB.
     */
    HVAR_JOB_MEMORY_MB: int(1, 2048),
    /** Memory all jobs in flight may hold together; a job that does not fit beside them gets 429. */
    HVAR_JOBS_MEMORY_MB: int(1, 6144),
    /**
     * A ceiling on tiles through the model per second (full tiles, as HVAR_MAX_QUEUED_TILES); none when unset. For a GPU shared with other
     * work, or a staging runner made as slow as a smaller card (autoscaling and 429 rehearsals).
     */
    HVAR_MAX_TILES_PER_SECOND: z.coerce.number().positive().optional(),
    /** LR pixels shared by neighbouring tiles; the manifest's `overlap`, else T/4, when unset. */
    HVAR_TILE_OVERLAP: z.coerce.number().int().min(0).optional(),
    /**
     * For a model whose tiles are fitted to each image (manifest `tileStep`): a coarser step, a multiple
     * of the manifest's that divides its tile. Fewer tile shapes, a little more work per image: on a GPU
     * each new shape costs cuDNN's algorithm search once per process. Unset: the manifest's.
     */
    HVAR_TILE_STEP: z.coerce.number().int().positive().optional(),

    /**
     * Decoded input pixels at most, whatever the scales: packages/contract's MAX_INPUT_PIXELS (2^22,
     * 2048x2048), the worker's MAX_INPUT_PIXELS too, so the edge refuses larger images before upload
     * ends. Change both together. A job of that size holds about 1.9 GB while it runs (HVAR_JOB_MEMORY_MB).
     */
    HVAR_MAX_INPUT_PIXELS: int(1, MAX_INPUT_PIXELS),
    HVAR_MAX_BODY_BYTES: int(1, 32 * 1024 * 1024),
    HVAR_ANIMATED: z.enum(["first", "reject"]).default("first"),

    HVAR_STORAGE: z.enum(["local", "s3"]).default("local"),
    HVAR_STORAGE_DIR: z.string().default(defaultStorageDir),
    HVAR_S3_ENDPOINT: z.url().optional(),
    HVAR_S3_BUCKET: z.string().optional(),
    HVAR_S3_REGION: z.string().default("auto"),
    HVAR_S3_ACCESS_KEY_ID: z.string().optional(),
    HVAR_S3_SECRET_ACCESS_KEY: z.string().optional(),

    /**
     * Jobs from a Cloudflare Queue (the worker's DISPATCH_BACKEND = "queue"), pulled over HTTP; no
     * pulling unless all three are set. The token (Queues read and write) is a secret: never logged.
     * The inputs and records are in the bucket the worker uses, so the queue goes with HVAR_STORAGE=s3.
     */
    HVAR_QUEUE_ACCOUNT_ID: z.string().min(1).optional(),
    HVAR_QUEUE_ID: z.string().min(1).optional(),
    HVAR_QUEUE_API_TOKEN: z.string().min(1).optional(),
    /** Cloudflare's API; another base only for a local fake of it (the tests). */
    HVAR_QUEUE_API_URL: z.url().default(CLOUDFLARE_API),
    /**
     * Queue messages (jobs) one runner holds at once: it pulls only while it holds fewer. `HVAR_CPUS` when
     * unset (loadConfig): a job encodes its outputs one after another, so fewer jobs leave CPUs idle.
     */
    HVAR_QUEUE_CONCURRENCY: z.coerce.number().int().min(1).optional(),
    /**
     * The lease of a pulled job (at most 12 h): longer than the slowest job, or another runner takes
     * it again; and short enough that a job whose runner died is delivered again, and finishes,
     * before the worker's deadline (JOB_TIMEOUT_S, 600 s by default).
     */
    HVAR_QUEUE_VISIBILITY_TIMEOUT_MS: z.coerce.number().int().min(1000).max(43_200_000).default(300_000),
    /** Delay before a job given back (runner busy, storage unreachable) is delivered again. */
    HVAR_QUEUE_RETRY_DELAY_S: z.coerce.number().int().min(0).max(43_200).default(10),
    /** Wait after an empty or failed pull before the next one. */
    HVAR_QUEUE_IDLE_WAIT_MS: int(10, 1000),

    /**
     * This runner among the replicas that share one store behind a load balancer (a Deployment's Pods
     * behind its Service): unique per replica and the same after a restart, as a Pod's name is (the
     * Deployment sets it from metadata.name). Default `<hostname>:<HVAR_RUNNER_PORT>`: set it for
     * runners on one host that share a store and listen on port 0.
     */
    HVAR_REPLICA_ID: z.string().min(1).max(256).optional(),
    /** How often a replica refreshes the shared record of each job it runs (its heartbeat). */
    HVAR_JOB_HEARTBEAT_MS: int(10, 1000),
    /**
     * A job's record whose heartbeat is older than this was left by a replica that died: the job is
     * answered as unknown (404), so the worker sends it again and another replica takes it over. At
     * least twice the heartbeat; under the worker's RUNNER_TIMEOUT_MS, as a cancel through another
     * replica may wait this long for a dead owner.
     */
    HVAR_JOB_STALE_MS: int(20, 5000),
  })
  .refine((c) => [c.HVAR_QUEUE_ACCOUNT_ID, c.HVAR_QUEUE_ID, c.HVAR_QUEUE_API_TOKEN].filter(Boolean).length % 3 === 0, {
    message: "pulling from a queue needs HVAR_QUEUE_ACCOUNT_ID, HVAR_QUEUE_ID and HVAR_QUEUE_API_TOKEN together",
  })
  .refine((c) => c.HVAR_JOB_STALE_MS >= 2 * c.HVAR_JOB_HEARTBEAT_MS, { message: "HVAR_JOB_STALE_MS must be at least twice HVAR_JOB_HEARTBEAT_MS" })
  .refine((c) => c.HVAR_STORAGE !== "s3" || (c.HVAR_S3_ENDPOINT && c.HVAR_S3_BUCKET && c.HVAR_S3_ACCESS_KEY_ID && c.HVAR_S3_SECRET_ACCESS_KEY), {
    message: "HVAR_STORAGE=s3 needs HVAR_S3_ENDPOINT, HVAR_S3_BUCKET, HVAR_S3_ACCESS_KEY_ID and HVAR_S3_SECRET_ACCESS_KEY",
  });
export type RunnerConfig = Omit<z.infer<typeof RunnerConfigSchema>, "HVAR_QUEUE_CONCURRENCY"> & { HVAR_QUEUE_CONCURRENCY: number };

export function loadConfig(env: NodeJS.ProcessEnv = process.env): RunnerConfig {
  const result = RunnerConfigSchema.safeParse(env);
  if (!result.success) throw new Error(`invalid runner configuration:\n${z.prettifyError(result.error)}`);
  const config = result.data;
  return { ...config, HVAR_QUEUE_CONCURRENCY: config.HVAR_QUEUE_CONCURRENCY ?? cpusOr(config.HVAR_CPUS) };
}

/**
 * The HMAC secret: from the environment, else (local stack only) from `.dev.vars`, which
 * `npm start` writes before it starts the runner. Undefined when neither has one.
 */
export function hmacSecret(config: RunnerConfig, devVars = devVarsPath): string | undefined {
  if (config.RUNNER_HMAC_SECRET) return config.RUNNER_HMAC_SECRET;
  let text: string;
  try {
    text = readFileSync(devVars, "utf8");
  } catch {
    return undefined;
  }
  return /^RUNNER_HMAC_SECRET=(.+)$/m.exec(text)?.[1]?.trim();
}
