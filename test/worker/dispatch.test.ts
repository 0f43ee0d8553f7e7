import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { inject } from "vitest";
import { describe, expect, it } from "vitest";
import { configOf } from "../../worker/src/config";
import { dispatcherOf } from "../../worker/src/dispatch";
import { RunnerPool } from "../../worker/src/dispatch/runner-pool";
import { DispatchError, type Dispatcher } from "../../worker/src/dispatch/types";
import worker from "../../worker/src/index";
import { advance, sweep } from "../../worker/src/jobs/lifecycle";
import { type JobRecord, getJob, listUnfinished } from "../../worker/src/storage/jobs";
import { meterOf, newKey, upscale, withInput } from "./helpers";
import { png } from "./images";
import { idDigits } from "./unique";
import { requests, serve, uniquePath } from "./origin";

/** Waits (a bounded number of polls) until `done` holds. */
async function until(done: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200 && !(await done()); i++) await new Promise((resolve) => setTimeout(resolve, 25));
}

const [live = "", other = ""] = env.RUNNER_URLS.split(",");
const dead = env.TEST_DEAD_RUNNER_URL;
const options = { scales: [2 as const], format: "png" as const, quality: null, temperature: 0, cleanup: 1 };
const pool = (urls: string[], secret = env.RUNNER_HMAC_SECRET) => new RunnerPool({ urls, secret, timeoutMs: 5000, bucket: env.RESULTS, model: env.MODEL_VERSION });
const otherModel = inject("otherModelRunner");
const jobId = (n: number) => `j_abcdefghijklmnop${idDigits(n, 4)}`;

describe("the runner-pool backend", () => {
  it("is configured with two runners in the tests", () => {
    expect(inject("runnerUrls")).toBe(`${live},${other}`);
  });

  it("moves on to another runner when one does not answer", async () => {
    const image = await png(16, 16);
    const runners = [dead, live];
    for (let n = 0; n < 6; n++) {
      const { runner } = await pool(runners).submit(await withInput({ id: jobId(n), image, contentType: "image/png", width: 16, height: 16, options, requestId: null }));
      expect(runner).toBe(live);
    }
  });

  it("passes over a runner that serves another model than MODEL_VERSION", async () => {
    const image = await png(16, 16);
    for (let n = 20; n < 26; n++) {
      const { runner } = await pool([otherModel.url, live]).submit(await withInput({ id: jobId(n), image, contentType: "image/png", width: 16, height: 16, options, requestId: null }));
      expect(runner).toBe(live);
    }
  });

  it("fails with a retryable no_runner_available, naming the model, when every runner serves another one", async () => {
    const submit = pool([otherModel.url]).submit(await withInput({ id: jobId(26), image: await png(16, 16), contentType: "image/png", width: 16, height: 16, options, requestId: null }));
    await expect(submit).rejects.toMatchObject({ code: "no_runner_available", retryable: true, message: expect.stringContaining(`serves ${otherModel.model}`) });
  });

  it("fails with a retryable no_runner_available when no runner answers", async () => {
    const submit = pool([dead]).submit(await withInput({ id: jobId(10), image: await png(16, 16), contentType: "image/png", width: 16, height: 16, options, requestId: null }));
    await expect(submit).rejects.toMatchObject({ code: "no_runner_available", retryable: true });
  });

  it("declares the size it billed: a runner refuses an image of another size, and no other runner is tried", async () => {
    const submit = pool([live, other]).submit(await withInput({ id: jobId(14), image: await png(16, 16), contentType: "image/png", width: 16, height: 17, options, requestId: null }));
    await expect(submit).rejects.toMatchObject({ code: "image_size_mismatch", kind: "unprocessable", retryable: false });
  });

  it("signs its requests: runners refuse another secret", async () => {
    const submit = pool([live], "not-the-runner-secret").submit(await withInput({ id: jobId(11), image: await png(16, 16), contentType: "image/png", width: 16, height: 16, options, requestId: null }));
    await expect(submit).rejects.toBeInstanceOf(DispatchError);
  });

  it("reports success only once the outputs are in R2, with their sha256", async () => {
    const runners = pool([live]);
    const id = jobId(12);
    await runners.submit(await withInput({ id, image: await png(16, 16), contentType: "image/png", width: 16, height: 16, options, requestId: null }));
    const state = await runners.poll(id, live);
    expect(state).toMatchObject({ status: "succeeded", outputs: [{ scale: 2, key: `results/${id}/x2.png` }] });
    const stored = await env.RESULTS.head(`results/${id}/x2.png`);
    expect(stored?.customMetadata?.sha256).toBe(state.status === "succeeded" ? state.outputs[0]?.sha256 : "");
  });

  it("reports a job the runner does not know as failed", async () => {
    expect(await pool([live]).poll(jobId(13), live)).toMatchObject({ status: "failed", error: { code: "job_lost" } });
  });
});

describe("jobs that outlive their deadline", () => {
  it("fail with job_timeout and give the quota back", async () => {
    const { key, secret } = await newKey();
    const image = await png(30, 30, { text: { "hvar-test": "hang" } });
    const response = await upscale(secret, image, { headers: { prefer: "wait=1" } });
    expect(response.status).toBe(202);
    const { id } = await response.json<{ id: string }>();
    const job = await getJob(env.DB, id);
    if (!job) throw new Error("no job");
    expect(await meterOf(key.id).usage()).toMatchObject({ reservedMp: 0.0009 });
    const ended = await advance({ env, dispatcher: pool([live]) }, job, job.deadlineAt);
    expect(ended).toMatchObject({ status: "failed", error: { code: "job_timeout" } });
    expect(await meterOf(key.id).usage()).toMatchObject({ reservedMp: 0, settledMp: 0 });
  });
});

describe("the cron trigger", () => {
  it("sweeps unfinished jobs: one past its deadline fails and is refunded", async () => {
    const { key, secret } = await newKey();
    const image = await png(30, 30, { text: { "hvar-test": "hang" } });
    const { id } = await (await upscale(secret, image, { headers: { prefer: "wait=1" } })).json<{ id: string }>();
    const unfinished = await listUnfinished(env.DB, 10_000);
    const job = unfinished.find((j) => j.id === id);
    if (!job) throw new Error("the job is not listed as unfinished");
    const [ended] = await sweep({ env }, [job], (j) => dispatcherOf(env, configOf(env), j), job.deadlineAt);
    expect(ended).toMatchObject({ status: "failed", error: { code: "job_timeout" } });
    expect(await meterOf(key.id).usage()).toMatchObject({ reservedMp: 0, settledMp: 0 });
  });

  it("treats a runner's garbled answer as that job's trouble: the job fails at its deadline and is refunded", async () => {
    const { key, secret } = await newKey();
    const image = await png(30, 30, { text: { "hvar-test": "garbled" } });
    const { id } = await (await upscale(secret, image, { headers: { prefer: "respond-async" } })).json<{ id: string }>();
    const job = await getJob(env.DB, id);
    if (!job) throw new Error("no job");
    const [ended] = await sweep({ env }, [job], (j) => dispatcherOf(env, configOf(env), j), job.deadlineAt);
    expect(ended).toMatchObject({ status: "failed", error: { code: "job_timeout" } });
    expect(await meterOf(key.id).usage()).toMatchObject({ reservedMp: 0, settledMp: 0 });
  });

  it("sweeps the other jobs when one of them throws", async () => {
    const { secret } = await newKey();
    const hanging = async () => {
      const image = await png(30, 30, { text: { "hvar-test": "hang" } });
      const { id } = await (await upscale(secret, image, { headers: { prefer: "respond-async" } })).json<{ id: string }>();
      const job = await getJob(env.DB, id);
      if (!job) throw new Error("no job");
      return job;
    };
    const broken = await hanging();
    const healthy = await hanging();
    const throwing: Dispatcher = { backend: "runner-pool", submit: () => Promise.reject(new Error("unused")), poll: () => Promise.reject(new Error("D1 went away")), cancel: () => Promise.resolve() };
    const dispatcherFor = (j: JobRecord) => (j.id === broken.id ? throwing : dispatcherOf(env, configOf(env), j));
    const swept = await sweep({ env }, [broken, healthy], dispatcherFor, healthy.deadlineAt);
    expect(swept.find((j) => j.id === healthy.id)).toMatchObject({ status: "failed", error: { code: "job_timeout" } });
  });

  it("fails and refunds a job that throws once it is past its deadline", async () => {
    const { key, secret } = await newKey();
    const image = await png(30, 30, { text: { "hvar-test": "hang" } });
    const { id } = await (await upscale(secret, image, { headers: { prefer: "respond-async" } })).json<{ id: string }>();
    const job = await getJob(env.DB, id);
    if (!job) throw new Error("no job");
    const throwing: Dispatcher = { backend: "runner-pool", submit: () => Promise.reject(new Error("unused")), poll: () => Promise.reject(new Error("D1 went away")), cancel: () => Promise.resolve() };
    const [ended] = await sweep({ env }, [job], () => throwing, job.deadlineAt);
    expect(ended).toMatchObject({ status: "failed", error: { code: "job_timeout" } });
    expect(await meterOf(key.id).usage()).toMatchObject({ reservedMp: 0, settledMp: 0 });
  });

  it("still delivers due webhooks when a job cannot be advanced", async () => {
    const { secret } = await newKey();
    const garbled = await png(30, 30, { text: { "hvar-test": "garbled" } });
    await upscale(secret, garbled, { headers: { prefer: "respond-async" } });
    const hook = `https://hooks.example${uniquePath()}`;
    await serve(hook, null, { status: 500 });
    const { id } = await (await upscale(secret, await png(30, 30), { query: `webhook_url=${encodeURIComponent(hook)}` })).json<{ id: string }>();
    await until(async () => (await requests(hook)).length === 1);
    await env.DB.prepare("UPDATE webhook_deliveries SET next_attempt_at = 0 WHERE job_id = ?").bind(id).run();
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "* * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
    expect(await requests(hook)).toHaveLength(2);
  });

  it("runs as the worker's scheduled handler", async () => {
    const ctx = createExecutionContext();
    await expect(worker.scheduled(createScheduledController({ cron: "* * * * *" }), env, ctx)).resolves.toBeUndefined();
    await waitOnExecutionContext(ctx);
  });
});
