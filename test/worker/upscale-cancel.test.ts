import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { configOf } from "../../worker/src/config";
import { dispatcherOf } from "../../worker/src/dispatch";
import { RunnerPool } from "../../worker/src/dispatch/runner-pool";
import { cancelUpscale } from "../../worker/src/jobs/cancel";
import { advance } from "../../worker/src/jobs/lifecycle";
import { hashRequest, startUpscale } from "../../worker/src/jobs/start";
import { randomId } from "../../worker/src/security/crypto";
import { type JobRecord, getJob } from "../../worker/src/storage/jobs";
import { inBucket } from "../../worker/src/storage/uploads";
import { normalizeUpscaleOptions, parseUpscaleParams } from "../../worker/src/validate/options";
import { sniffImage } from "../../worker/src/validate/sniff";
import { BASE, ledgerOf, meterOf, newKey, upscale, withInput, withKey } from "./helpers";
import { png } from "./images";
import { requests, serve, uniquePath } from "./origin";
import { STUB_LIMITS } from "./setup/stub-limits";

/** A job the stub runner keeps running (behaviour `hang`, or another), started without waiting. */
async function running(secret: string, behaviour = "hang", query = ""): Promise<JobRecord> {
  const image = await png(30, 20, { text: { "hvar-test": behaviour } });
  const response = await upscale(secret, image, { query, headers: { prefer: "respond-async" } });
  const { id } = await response.json<{ id: string }>();
  const job = await getJob(env.DB, id);
  if (!job?.runner) throw new Error(`no running job: ${response.status}`);
  return job;
}

const cancel = (secret: string, id: string) => withKey(secret, `/v1/upscales/${id}/cancel`, { method: "POST" });

/** The job ids a stub runner was asked to cancel. */
async function canceledAt(runner: string): Promise<string[]> {
  return (await fetch(`${runner}/__canceled`)).json();
}

describe("POST /v1/upscales/{id}/cancel", () => {
  it("answers 200 with the job, canceled", async () => {
    const { secret } = await newKey();
    const job = await running(secret);
    const response = await cancel(secret, job.id);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ id: job.id, status: "canceled", usage: { billable: false } });
  });

  it("stops the work on the job's runner", async () => {
    const { secret } = await newKey();
    const job = await running(secret);
    await cancel(secret, job.id);
    expect(await canceledAt(job.runner ?? "")).toContain(job.id);
  });

  it("refunds the job's reserved quota and bills nothing", async () => {
    const { key, secret } = await newKey();
    const job = await running(secret);
    expect(await meterOf(key.id).usage()).toMatchObject({ reservedMp: 0.0006, settledMp: 0 });
    await cancel(secret, job.id);
    expect(await meterOf(key.id).usage()).toMatchObject({ reservedMp: 0, settledMp: 0 });
    expect(await ledgerOf(key.id)).toEqual([]);
  });

  it("answers a second cancel with the same canceled job, and refunds nothing more", async () => {
    const { key, secret } = await newKey();
    const first = await running(secret);
    const second = await running(secret);
    await cancel(secret, first.id);
    const again = await cancel(secret, first.id);
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ id: first.id, status: "canceled" });
    // The other job's reservation is still held: the repeated cancel refunded nothing of it.
    expect(await meterOf(key.id).usage()).toMatchObject({ reservedMp: 0.0006 });
    await cancel(secret, second.id);
  });

  it("leaves the job canceled for later reads", async () => {
    const { secret } = await newKey();
    const job = await running(secret);
    await cancel(secret, job.id);
    expect(await (await withKey(secret, `/v1/upscales/${job.id}`)).json()).toMatchObject({ status: "canceled" });
  });

  it("sends an upscale.canceled webhook", async () => {
    const { secret } = await newKey();
    const hook = `https://hooks.example${uniquePath()}`;
    await serve(hook, null, { status: 204 });
    const job = await running(secret, "hang", `webhook_url=${encodeURIComponent(hook)}`);
    await cancel(secret, job.id);
    let posts: { body: string }[] = [];
    for (let i = 0; i < 200 && posts.length === 0; i++) {
      posts = (await requests(hook)).filter((r) => r.method === "POST");
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(JSON.parse(posts[0]?.body ?? "{}")).toMatchObject({ type: "upscale.canceled", data: { id: job.id, status: "canceled" } });
  });

  it("refuses a job that already succeeded with 409 job_already_succeeded, and it stays billed", async () => {
    const { key, secret } = await newKey();
    const { id } = await (await upscale(secret, await png(30, 20))).json<{ id: string }>();
    const response = await cancel(secret, id);
    expect(response.status).toBe(409);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(await response.json()).toMatchObject({ code: "job_already_succeeded", jobId: id });
    expect(await meterOf(key.id).usage()).toMatchObject({ settledMp: 0.0006 });
  });

  it("refuses a job that already failed with 409 job_already_failed", async () => {
    const { secret } = await newKey();
    const failed = await upscale(secret, await png(30, 20, { text: { "hvar-test": "fail" } }));
    const { jobId } = await failed.json<{ jobId: string }>();
    const response = await cancel(secret, jobId);
    expect(response.status).toBe(409);
    expect(await response.json()).toMatchObject({ code: "job_already_failed" });
  });

  it("answers 404 for another key's job", async () => {
    const owner = await newKey();
    const other = await newKey();
    const job = await running(owner.secret);
    const response = await cancel(other.secret, job.id);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ code: "job_not_found" });
    await cancel(owner.secret, job.id);
  });

  it("answers 409 job_canceled to a replay of the POST that started the job", async () => {
    const { secret } = await newKey();
    const image = await png(30, 20, { text: { "hvar-test": "hang" } });
    const headers = { prefer: "respond-async", "idempotency-key": "cancel-replay" };
    const { id } = await (await upscale(secret, image, { headers })).json<{ id: string }>();
    await cancel(secret, id);
    const replay = await upscale(secret, image, { headers });
    expect(replay.status).toBe(409);
    expect(await replay.json()).toMatchObject({ code: "job_canceled", jobId: id });
  });
});

describe("a cancel racing the job's end", () => {
  it("leaves a job that succeeded before the cancel reached its runner succeeded", async () => {
    const { secret } = await newKey();
    // Read while the job was running; the stub runner has finished it at once.
    const stale = await running(secret, "ok");
    expect(stale.status).toBe("running");
    const dispatcher = dispatcherOf(env, configOf(env), stale);
    const ended = await cancelUpscale({ env, dispatcher }, stale);
    expect(ended.status).toBe("succeeded");
  });
});

describe("a job the worker gives up on", () => {
  it("is stopped at its runner when it passes its deadline, then failed and refunded", async () => {
    const { key, secret } = await newKey();
    const job = await running(secret);
    const dispatcher = dispatcherOf(env, configOf(env), job);
    if (!dispatcher) throw new Error("no dispatcher");
    const ended = await advance({ env, dispatcher }, job, job.deadlineAt);
    expect(ended).toMatchObject({ status: "failed", error: { code: "job_timeout" } });
    expect(await canceledAt(job.runner ?? "")).toContain(job.id);
    expect(await meterOf(key.id).usage()).toMatchObject({ reservedMp: 0, settledMp: 0 });
  });

  it("is stopped at the runner that took it when the submit got no answer in time (no_runner_available)", async () => {
    const [runner = ""] = env.RUNNER_URLS.split(",");
    const pool = new RunnerPool({ urls: [runner], secret: env.RUNNER_HMAC_SECRET, timeoutMs: 200, bucket: env.RESULTS, model: env.MODEL_VERSION });
    const { key } = await newKey();
    const bytes = await png(30, 20, { text: { "hvar-test": "stall" } });
    const options = normalizeUpscaleOptions(parseUpscaleParams({ scales: "2" }), undefined, STUB_LIMITS);
    const job = await withInput({ id: randomId("j"), image: bytes, contentType: "image/png", width: 30, height: 20, options, requestId: null });
    const request = { id: job.id, key: { id: key.id, monthlyQuotaMp: 1000 }, image: sniffImage(bytes), input: inBucket(env.RESULTS, job.input), options, idempotencyKey: null, webhookUrl: null, origin: BASE, requestId: "req_stalledsubmitrequest" };
    const started = startUpscale({ env, dispatcher: pool, jobTimeoutS: 600 }, request, await hashRequest(job.input.sha256, options, "test"));
    await expect(started).rejects.toMatchObject({ kind: "unavailable", code: "no_runner_available" });
    const { jobId } = (await started.catch((error: { extensions: { jobId: string } }) => error.extensions)) as { jobId: string };
    expect(await canceledAt(runner)).toContain(jobId);
    expect(await pool.poll(jobId, runner)).toEqual({ status: "canceled" });
  });
});
