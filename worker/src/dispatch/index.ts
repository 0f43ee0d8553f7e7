import { SCALES } from "@hvar/contract";
import Replicate from "replicate";
import { type Config, backendSchema } from "../config";
import type { Bindings } from "../env";
import { JobQueue } from "./queue";
import { ReplicateBackend } from "./replicate";
import { RunnerPool } from "./runner-pool";
import type { Dispatcher } from "./types";
import type { JobRecord } from "../storage/jobs";
import type { EdgeLimits } from "../validate/limits";

/**
 * What the edge accepts now: the worker's own settings (MAX_UPLOAD_BYTES, MAX_INPUT_PIXELS and
 * MAX_OUTPUT_PIXELS, which default to packages/contract's limits.ts), narrowed by what the backend's
 * runners say they accept (their model manifest), where they have been heard.
 */
export async function edgeLimits(config: Config, dispatcher: Dispatcher): Promise<EdgeLimits> {
  const runners = (await dispatcher.limits?.()) ?? null;
  return {
    maxInputPixels: Math.min(config.MAX_INPUT_PIXELS, runners?.maxInputPixels ?? Number.POSITIVE_INFINITY),
    maxOutputPixels: Math.min(config.MAX_OUTPUT_PIXELS, runners?.maxOutputPixels ?? Number.POSITIVE_INFINITY),
    maxBytes: Math.min(config.MAX_UPLOAD_BYTES, runners?.maxBodyBytes ?? Number.POSITIVE_INFINITY),
    scales: runners?.scales ?? SCALES,
    // Unheard runners may sample: temperatures stay apart until one says its model does not.
    sampling: runners?.sampling ?? true,
    // Likewise clean-up strengths, until a runner says its model has no such setting.
    cleanup: runners?.cleanup ?? true,
  };
}

export const REPLICATE_WEBHOOK_PATH = "/v1/replicate/webhook";

/** The Replicate backend, also for its webhooks when another backend is the default. */
export function replicateBackend(env: Bindings, config: Config, origin?: string): ReplicateBackend | null {
  if (!config.REPLICATE_API_TOKEN || !config.REPLICATE_MODEL_VERSION) return null;
  return new ReplicateBackend({
    client: new Replicate({ auth: config.REPLICATE_API_TOKEN }),
    version: config.REPLICATE_MODEL_VERSION,
    bucket: env.RESULTS,
    timeoutMs: config.RUNNER_TIMEOUT_MS,
    ...(origin && config.REPLICATE_WEBHOOK_SECRET ? { webhookUrl: origin + REPLICATE_WEBHOOK_PATH } : {}),
  });
}

/** The backend named by DISPATCH_BACKEND in wrangler.toml (per environment), for new jobs. */
export function dispatcherFor(env: Bindings, config: Config, origin?: string): Dispatcher {
  return dispatcherNamed(env, config, config.DISPATCH_BACKEND, origin);
}

/** The backend a job was dispatched to: a job keeps its backend when the configuration changes. */
export function dispatcherNamed(env: Bindings, config: Config, backend: Config["DISPATCH_BACKEND"], origin?: string): Dispatcher {
  switch (backend) {
    case "runner-pool":
      return new RunnerPool({ urls: config.RUNNER_URLS, secret: config.RUNNER_HMAC_SECRET, timeoutMs: config.RUNNER_TIMEOUT_MS, bucket: env.RESULTS, model: config.MODEL_VERSION });
    case "queue":
      return new JobQueue({ queue: env.JOBS_QUEUE, bucket: env.RESULTS, model: config.MODEL_VERSION });
    case "replicate": {
      const backend = replicateBackend(env, config, origin);
      if (!backend) throw new Error("the replicate backend is not configured");
      return backend;
    }
  }
}

/** The dispatcher that can poll a job, or null when its backend is no longer configured. */
export function dispatcherOf(env: Bindings, config: Config, job: JobRecord): Dispatcher | null {
  const backend = backendSchema.safeParse(job.backend);
  if (!backend.success) return null;
  try {
    return dispatcherNamed(env, config, backend.data);
  } catch {
    return null;
  }
}
