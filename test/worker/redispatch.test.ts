import { env } from "cloudflare:test";
import { inputKey } from "@hvar/contract";
import { describe, expect, inject, it } from "vitest";
import { configOf } from "../../worker/src/config";
import { dispatcherOf } from "../../worker/src/dispatch";
import { MAX_SENDS, RunnerPool } from "../../worker/src/dispatch/runner-pool";
import { sendStateKey } from "../../worker/src/storage/uploads";
import { advance } from "../../worker/src/jobs/lifecycle";
import { getJob } from "../../worker/src/storage/jobs";
import { meterOf, newKey, upscale, withInput } from "./helpers";
import { png } from "./images";

/** A runner that restarts forgets its jobs in flight; the pool sends them again from R2. */
const [live = ""] = env.RUNNER_URLS.split(",");
const dead = env.TEST_DEAD_RUNNER_URL;
const options = { scales: [2 as const], format: "png" as const, quality: null, temperature: 0, cleanup: 1 };
const pool = (urls: string[]) => new RunnerPool({ urls, secret: env.RUNNER_HMAC_SECRET, timeoutMs: 5000, bucket: env.RESULTS, model: env.MODEL_VERSION });
/** Job ids as the worker makes them (20 of a-z2-7), one per test. */
const jobId = (n: 2 | 3 | 4 | 5 | 6) => `j_redispatchabcdefghi${n}`;

/** What a runner restart does to the stub: the job is unknown afterwards. */
async function restartLoses(id: string, runner = live): Promise<void> {
  const response = await fetch(`${runner}/__forget/${id}`, { method: "POST" });
  expect(response.status).toBe(204);
}

describe("a job its runner lost", () => {
  it("is sent to that runner again from the input kept in R2, and ends normally; the input is removed then", async () => {
    const runners = pool([live]);
    const id = jobId(2);
    const image = await png(16, 16);
    await runners.submit(await withInput({ id, image, contentType: "image/png", width: 16, height: 16, options, requestId: null }));
    expect(await (await env.RESULTS.get(sendStateKey(id)))?.json()).toMatchObject({ attempts: 1 });

    await restartLoses(id);
    expect(await runners.poll(id, live)).toEqual({ status: "queued" });
    expect(await (await env.RESULTS.get(sendStateKey(id)))?.json()).toMatchObject({ attempts: 2 });

    expect(await runners.poll(id, live)).toMatchObject({ status: "succeeded", outputs: [{ scale: 2, width: 32, height: 32 }] });
    expect(await env.RESULTS.head(inputKey(id))).toBeNull();
    expect(await env.RESULTS.head(sendStateKey(id))).toBeNull();
  });

  it(`fails as job_lost once it was sent ${MAX_SENDS} times`, async () => {
    const runners = pool([live]);
    const id = jobId(3);
    await runners.submit(await withInput({ id, image: await png(16, 16), contentType: "image/png", width: 16, height: 16, options, requestId: null }));
    for (let attempt = 2; attempt <= MAX_SENDS; attempt++) {
      await restartLoses(id);
      expect(await runners.poll(id, live)).toEqual({ status: "queued" });
    }
    await restartLoses(id);
    expect(await runners.poll(id, live)).toMatchObject({ status: "failed", error: { code: "job_lost" } });
    expect(await env.RESULTS.head(inputKey(id))).toBeNull();
  });

  it("spends no send when the runner still holds the job, as a replica behind a load balancer may answer", async () => {
    const runners = pool([live]);
    const id = jobId(6);
    await runners.submit(await withInput({ id, image: await png(16, 16), contentType: "image/png", width: 16, height: 16, options, requestId: null }));
    for (let poll = 0; poll < MAX_SENDS + 1; poll++) {
      const hidden = await fetch(`${live}/__hide/${id}`, { method: "POST" });
      expect(hidden.status).toBe(204);
      expect(await runners.poll(id, live)).toEqual({ status: "queued" });
    }
    expect(await (await env.RESULTS.get(sendStateKey(id)))?.json()).toMatchObject({ attempts: 1 });
    expect(await runners.poll(id, live)).toMatchObject({ status: "succeeded" });
  });

  it("fails as model_mismatch when its runner came back serving another model, keeping nothing", async () => {
    const runners = pool([live]);
    const id = jobId(5);
    await runners.submit(await withInput({ id, image: await png(16, 16), contentType: "image/png", width: 16, height: 16, options, requestId: null }));
    // The job's runner is polled at an address whose runner restarted with another model.
    const other = inject("otherModelRunner");
    expect(await runners.poll(id, other.url)).toEqual({
      status: "failed",
      error: { code: "model_mismatch", title: `The runner serves ${other.model}, not ${env.MODEL_VERSION}` },
    });
    expect(await env.RESULTS.head(inputKey(id))).toBeNull();
    expect((await env.RESULTS.list({ prefix: `results/${id}/` })).objects).toEqual([]);
  });

  it("keeps no input when no runner took the job", async () => {
    const id = jobId(4);
    await expect(pool([dead]).submit(await withInput({ id, image: await png(16, 16), contentType: "image/png", width: 16, height: 16, options, requestId: null }))).rejects.toMatchObject({ code: "no_runner_available" });
    expect(await env.RESULTS.head(inputKey(id))).toBeNull();
  });

  it("through the API: the job succeeds after the loss and is billed once", async () => {
    const { key, secret } = await newKey();
    const image = await png(20, 10, { text: { "hvar-test": "ok" } });
    const response = await upscale(secret, image, { headers: { prefer: "wait=0" } });
    expect(response.status).toBe(202);
    const { id } = await response.json<{ id: string }>();
    const job = await getJob(env.DB, id);
    if (!job?.runner) throw new Error("no running job");
    const dispatcher = dispatcherOf(env, configOf(env), job);
    if (!dispatcher) throw new Error("no dispatcher");

    await restartLoses(id, job.runner);
    const resent = await advance({ env, dispatcher }, job);
    expect(resent.status).toBe("running");
    const done = await advance({ env, dispatcher }, resent);
    expect(done.status).toBe("succeeded");
    expect(await meterOf(key.id).usage()).toMatchObject({ reservedMp: 0, settledMp: 0.0002 });
  });
});
