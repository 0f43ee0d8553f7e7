import { configOf } from "../config";
import { dispatcherOf } from "../dispatch";
import type { Bindings } from "../env";
import { listUnfinished } from "../storage/jobs";
import { deliverDue } from "../webhooks/deliver";
import { sweep } from "./lifecycle";
import type { Defer } from "./notify";

/** Jobs advanced per cron run (one poll each). */
const SWEEP_BATCH = 100;

/**
 * The cron trigger's work (wrangler.toml): unfinished jobs, then webhook deliveries that are due.
 * The deliveries are sent whatever happened to the sweep: webhook retries must not wait on jobs.
 */
export async function runCron(env: Bindings, defer: Defer): Promise<void> {
  try {
    const config = configOf(env);
    const jobs = await listUnfinished(env.DB, SWEEP_BATCH);
    await sweep({ env, defer }, jobs, (job) => dispatcherOf(env, config, job));
  } finally {
    defer(deliverDue(env.DB));
  }
}
