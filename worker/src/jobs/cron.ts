import { configOf } from "../config";
import { dispatcherOf } from "../dispatch";
import type { Bindings } from "../env";
import { listUnfinished } from "../storage/jobs";
import { deliverDue } from "../webhooks/deliver";
import { sweep } from "./lifecycle";
import type { Defer } from "./notify";
import { sweepExpired } from "./retention";

/** Jobs advanced per cron run (one poll each). */
const SWEEP_BATCH = 100;
/** Jobs whose results expire, and job rows deleted, per cron run (two R2 calls each): a backlog drains over several runs. */
const RETENTION_BATCH = 50;

/**
 * The cron trigger's work (wrangler.toml): unfinished jobs and retention side by side, then webhook
 * deliveries that are due. Each part runs whatever happened to the others: webhook retries must
 * not wait on jobs, nor retention on a job that cannot be advanced.
 */
export async function runCron(env: Bindings, defer: Defer): Promise<void> {
  try {
    const config = configOf(env);
    const outcomes = await Promise.allSettled([
      listUnfinished(env.DB, SWEEP_BATCH).then((jobs) => sweep({ env, defer }, jobs, (job) => dispatcherOf(env, config, job))),
      sweepExpired(env, config, RETENTION_BATCH),
    ]);
    const failure = outcomes.find((outcome) => outcome.status === "rejected");
    if (failure) throw failure.reason;
  } finally {
    defer(deliverDue(env.DB));
  }
}
