import type { Config } from "../config";
import type { Bindings } from "../env";
import { JobQueue } from "./queue";
import { RunnerPool } from "./runner-pool";
import type { Dispatcher } from "./types";

/** The backend named by DISPATCH_BACKEND in wrangler.toml (per environment). */
export function dispatcherFor(env: Bindings, config: Config): Dispatcher {
  switch (config.DISPATCH_BACKEND) {
    case "runner-pool":
      return new RunnerPool({ urls: config.RUNNER_URLS, secret: config.RUNNER_HMAC_SECRET, timeoutMs: config.RUNNER_TIMEOUT_MS, bucket: env.RESULTS });
    case "queue":
      return new JobQueue({ queue: env.JOBS_QUEUE, bucket: env.RESULTS });
  }
}
