import { DomainError } from "@hvar/contract";
import type { Config } from "../config";
import { dispatcherOf } from "../dispatch";
import { DispatchError, type Dispatcher } from "../dispatch/types";
import type { Bindings } from "../env";
import { type JobRecord, type Outcome, finishJob, getJob, recordProgress } from "../storage/jobs";
import { megapixels, recordBilledJob, totalMegapixels } from "./billing";
import { type Defer, enqueueCompletion, sendSoon } from "./notify";
import { refundQuota, settleQuota } from "./quota";

/**
 * Moving a job to its end. Every step is idempotent (the meter settles or refunds a reservation
 * once, the ledger ignores a second row for a job, the status changes only from queued/running),
 * and the status changes last: a worker that dies half-way leaves the job unfinished, and the
 * next poll repeats the steps safely. So any number of concurrent pollers bill a job exactly once.
 */
export interface JobDeps {
  env: Bindings;
  dispatcher: Dispatcher;
  /** Runs work after the answer (ctx.waitUntil); without it, that work waits for the cron trigger. */
  defer?: Defer;
}

const POLL_INTERVAL_MS = 250;

export function isDone(job: JobRecord): boolean {
  return job.status === "succeeded" || job.status === "failed" || job.status === "canceled";
}

/**
 * The error a failed job answers with, every time it is asked: the kind it failed with (a refusal of
 * the client's image is that client's error, replayed as itself), else an upstream failure (502).
 */
export function failureOf(job: JobRecord, title = "The job failed"): DomainError {
  return new DomainError({
    kind: job.error?.kind ?? "upstream",
    code: job.error?.code ?? "job_failed",
    title: job.error?.title ?? title,
    extensions: { jobId: job.id },
  });
}

/**
 * Stops the job's work at its backend, so that no compute is spent on a job the worker has given up
 * on or refunded. Best effort: a backend that cannot be reached now is logged, and the job ends anyway.
 */
export async function stopAtBackend(dispatcher: Dispatcher, job: Pick<JobRecord, "id" | "runner" | "requestId">): Promise<void> {
  try {
    await dispatcher.cancel(job.id, job.runner, job.requestId);
  } catch (error) {
    if (!(error instanceof DispatchError)) throw error;
    console.warn(JSON.stringify({ level: "warn", msg: "the job could not be stopped at its backend", jobId: job.id, requestId: job.requestId, code: error.code, error: error.message }));
  }
}

/** Bills or refunds the job (a canceled job is refunded), enqueues its webhook, then records its end (see above for the order). */
export async function conclude(deps: Omit<JobDeps, "dispatcher">, job: JobRecord, outcome: Outcome): Promise<JobRecord> {
  const { env } = deps;
  const inputMp = megapixels(job.input.width, job.input.height);
  if (outcome.status === "succeeded") {
    await settleQuota(env, job.keyId, job.id, inputMp);
    await recordBilledJob(env.DB, { jobId: job.id, keyId: job.keyId, inputMp, outputMp: totalMegapixels(outcome.outputs), runnerMs: outcome.runnerMs });
  } else {
    // Failed or canceled: the whole reservation, once (the meter refunds a reservation only once).
    await refundQuota(env, job.keyId, job.id);
  }
  await enqueueCompletion(env, endedAs(job, outcome));
  const transitioned = await finishJob(env.DB, job.id, outcome);
  if (transitioned) sendSoon(env.DB, job, deps.defer);
  return (await getJob(env.DB, job.id)) ?? job;
}

/** The job as it is once `outcome` is recorded (finishJob). */
function endedAs(job: JobRecord, outcome: Outcome): JobRecord {
  if (outcome.status === "failed") return { ...job, status: "failed", error: outcome.error };
  if (outcome.status === "canceled") return { ...job, status: "canceled" };
  return { ...job, status: "succeeded", outputs: outcome.outputs, model: outcome.model, runnerMs: outcome.runnerMs, cleanupApplied: outcome.cleanup };
}

/** One step: asks the backend once, and concludes the job if it ended or ran out of time. */
export async function advance(deps: JobDeps, read: JobRecord, now = Date.now()): Promise<JobRecord> {
  if (isDone(read)) return read;
  // A copy read while another request was still handing the job over (an idempotent replay) has no
  // runner yet; the stored job may have one by now, or may even have ended.
  const job = read.runner ? read : ((await getJob(deps.env.DB, read.id)) ?? read);
  if (isDone(job)) return job;
  let current = job;
  if (job.runner) {
    try {
      const state = await deps.dispatcher.poll(job.id, job.runner, job.requestId);
      if (state.status === "succeeded" || state.status === "failed" || state.status === "canceled") return conclude(deps, job, state);
      if (state.progress && (state.progress.tilesDone !== job.progress?.tilesDone || state.progress.tilesTotal !== job.progress?.tilesTotal)) {
        await recordProgress(deps.env.DB, job.id, state.progress);
        current = { ...job, progress: state.progress };
      }
    } catch (error) {
      // A runner that cannot be reached now may answer later; the deadline bounds the wait.
      if (!(error instanceof DispatchError)) throw error;
    }
  }
  if (now >= job.deadlineAt) return giveUp(deps, current, timedOut);
  return current;
}

/** Ends a job the worker will no longer wait for: stopped at its backend first, then failed and refunded. */
export async function giveUp(deps: JobDeps, job: JobRecord, outcome: Extract<Outcome, { status: "failed" }>): Promise<JobRecord> {
  await stopAtBackend(deps.dispatcher, job);
  return conclude(deps, job, outcome);
}

/** One step on the backend the job was dispatched to; the job as it is when that backend is no longer configured. */
export async function refresh(env: Bindings, config: Config, job: JobRecord, defer?: Defer): Promise<JobRecord> {
  const dispatcher = dispatcherOf(env, config, job);
  return dispatcher ? advance({ env, dispatcher, defer }, job) : job;
}

/** Advances the job until it ends or `until` (epoch ms) passes. */
export async function waitFor(deps: JobDeps, job: JobRecord, until: number): Promise<JobRecord> {
  let current = await advance(deps, job);
  while (!isDone(current) && Date.now() + POLL_INTERVAL_MS < until) {
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    current = await advance(deps, current);
  }
  return current;
}

const timedOut: Extract<Outcome, { status: "failed" }> = { status: "failed", error: { code: "job_timeout", title: "The job did not finish in time" } };

/**
 * The cron trigger's sweep: advances unfinished jobs, so that jobs nobody polls still end, get
 * billed or refunded, and send their webhooks, and jobs past their deadline fail and are refunded.
 *
 * Each job on its own: one that throws is logged and left for the next run (or, past its deadline,
 * failed and refunded), and never stops the others nor the webhook deliveries after the sweep.
 */
export async function sweep(deps: Omit<JobDeps, "dispatcher">, jobs: JobRecord[], backendOf: (job: JobRecord) => Dispatcher | null, now = Date.now()): Promise<JobRecord[]> {
  return Promise.all(
    jobs.map(async (job) => {
      const dispatcher = backendOf(job);
      if (!dispatcher) return job;
      try {
        return await advance({ ...deps, dispatcher }, job, now);
      } catch (error) {
        console.error(JSON.stringify({ level: "error", msg: "sweep: the job could not be advanced", jobId: job.id, requestId: job.requestId, error: String(error) }));
        if (now < job.deadlineAt) return job;
        try {
          return await giveUp({ ...deps, dispatcher }, job, timedOut);
        } catch (concludeError) {
          console.error(JSON.stringify({ level: "error", msg: "sweep: the job could not be failed", jobId: job.id, requestId: job.requestId, error: String(concludeError) }));
          return job;
        }
      }
    }),
  );
}
