import { env } from "cloudflare:test";
import { type Model, type QueueMessage, type RunnerJob, inputKey, jobRecordKey, modelName, queueMessageSchema } from "@hvar/contract";
import { describe, expect, it } from "vitest";
import { configOf } from "../../worker/src/config";
import { dispatcherFor } from "../../worker/src/dispatch";
import { type JobSender, JobQueue } from "../../worker/src/dispatch/queue";
import { sha256Hex } from "../../worker/src/security/crypto";
import { putResult } from "../../worker/src/storage/results";
import { withInput } from "./helpers";
import { png } from "./images";
import { idDigits } from "./unique";

const options = { scales: [2 as const], format: "webp" as const, quality: 80, temperature: 0, cleanup: 1 };
let n = 0;
const jobId = () => `j_queue${idDigits(n++, 15)}`;

/** The model the queue's runners serve, which these tests configure as MODEL_VERSION. */
const SERVED: Model = { id: "hvar-base", version: "1.0.0" };
const jobQueue = (queue: JobSender) => new JobQueue({ queue, bucket: env.RESULTS, model: modelName(SERVED) });

/** Records what the worker sends, and how, as the Queue binding would receive it. */
function recordingQueue(): { sent: QueueMessage[]; options: (QueueSendOptions | undefined)[]; queue: JobSender } {
  const sent: QueueMessage[] = [];
  const options: (QueueSendOptions | undefined)[] = [];
  return {
    sent,
    options,
    queue: {
      send: async (message, sendOptions) => {
        sent.push(message);
        options.push(sendOptions);
      },
    },
  };
}

/** What a runner writes when it has finished a job taken from the queue. */
async function runnerFinishes(id: string, status: "succeeded" | "failed", model = SERVED): Promise<void> {
  const bytes = new TextEncoder().encode(`output of ${id}`);
  const sha256 = await sha256Hex(bytes);
  const key = `results/${id}/x2.webp`;
  if (status === "succeeded") await putResult(env.RESULTS, { key, contentType: "image/webp", sha256, bytes: bytes.length }, bytes.slice().buffer);
  const base = { id, model, input: { width: 4, height: 4 }, progress: { tilesDone: 1, tilesTotal: 1 }, runnerMs: 7 };
  const job: RunnerJob =
    status === "succeeded"
      ? { ...base, status, outputs: [{ scale: 2, key, contentType: "image/webp", width: 8, height: 8, bytes: bytes.length, sha256 }] }
      : { ...base, status, error: { code: "inference_failed", title: "boom" } };
  await env.RESULTS.put(jobRecordKey(id), JSON.stringify(job));
}

describe("the queue backend", () => {
  it("stores the image in R2 and sends a small message that points at it, with the job's request id", async () => {
    const { sent, queue } = recordingQueue();
    const id = jobId();
    const image = await png(16, 16);
    expect(await jobQueue(queue).submit(await withInput({ id, image, contentType: "image/png", width: 16, height: 16, options, requestId: "req_queuedjobrequest" }))).toEqual({ runner: "queue" });
    expect(sent).toHaveLength(1);
    expect(queueMessageSchema.parse(sent[0])).toEqual({
      v: 1,
      id,
      input: { key: inputKey(id), contentType: "image/png", bytes: image.length, sha256: await sha256Hex(image), width: 16, height: 16 },
      ...options,
      requestId: "req_queuedjobrequest",
    });
    const stored = await env.RESULTS.get(inputKey(id));
    expect(new Uint8Array((await stored?.arrayBuffer()) ?? new ArrayBuffer(0))).toEqual(image);
  });

  it("sends the message as JSON, the content type the runners' pull consumer reads (not v8)", async () => {
    const { options: sent, queue } = recordingQueue();
    await jobQueue(queue).submit(await withInput({ id: jobId(), image: await png(8, 8), contentType: "image/png", width: 8, height: 8, options, requestId: null }));
    expect(sent).toEqual([{ contentType: "json" }]);
  });

  it("works with the real Queue binding of wrangler.toml", async () => {
    const jobs = jobQueue(env.JOBS_QUEUE);
    await expect(jobs.submit(await withInput({ id: jobId(), image: await png(8, 8), contentType: "image/png", width: 8, height: 8, options, requestId: null }))).resolves.toEqual({ runner: "queue" });
  });

  it("reports a job as queued until the runner writes its status", async () => {
    const { queue } = recordingQueue();
    expect(await jobQueue(queue).poll(jobId())).toEqual({ status: "queued" });
  });

  it("reports success from the runner's status object, once the outputs are in R2", async () => {
    const { queue } = recordingQueue();
    const jobs = jobQueue(queue);
    const id = jobId();
    await jobs.submit(await withInput({ id, image: await png(8, 8), contentType: "image/png", width: 8, height: 8, options, requestId: null }));
    await runnerFinishes(id, "succeeded");
    expect(await jobs.poll(id)).toMatchObject({ status: "succeeded", runnerMs: 7, outputs: [{ scale: 2, key: `results/${id}/x2.webp` }] });
    expect(await env.RESULTS.head(inputKey(id))).toBeNull();
  });

  it("reports the runner's failure", async () => {
    const { queue } = recordingQueue();
    const id = jobId();
    await runnerFinishes(id, "failed");
    expect(await jobQueue(queue).poll(id)).toEqual({ status: "failed", error: { code: "inference_failed", title: "boom" } });
  });

  it("fails a job whose runner serves another model than MODEL_VERSION, and removes its input", async () => {
    const jobs = jobQueue(recordingQueue().queue);
    const id = jobId();
    await jobs.submit(await withInput({ id, image: await png(8, 8), contentType: "image/png", width: 8, height: 8, options, requestId: null }));
    await runnerFinishes(id, "succeeded", { ...SERVED, version: "0.9.0" });
    expect(await jobs.poll(id)).toEqual({ status: "failed", error: { code: "model_mismatch", title: `The runner serves hvar-base@0.9.0, not ${modelName(SERVED)}` } });
    expect(await env.RESULTS.head(inputKey(id))).toBeNull();
  });

  it("cancels by deleting the job's input, so a runner that has not started it finds nothing to run", async () => {
    const { queue } = recordingQueue();
    const jobs = jobQueue(queue);
    const id = jobId();
    await jobs.submit(await withInput({ id, image: await png(8, 8), contentType: "image/png", width: 8, height: 8, options, requestId: null }));
    await jobs.cancel(id);
    expect(await env.RESULTS.head(inputKey(id))).toBeNull();
  });

  it("turns a refused send into a retryable queue_unavailable, leaving no input behind", async () => {
    const id = jobId();
    const queue = { send: async () => Promise.reject(new Error("queue is full")) };
    const submit = jobQueue(queue).submit(await withInput({ id, image: await png(8, 8), contentType: "image/png", width: 8, height: 8, options, requestId: null }));
    await expect(submit).rejects.toMatchObject({ code: "queue_unavailable", retryable: true });
    expect(await env.RESULTS.head(inputKey(id))).toBeNull();
  });
});

describe("choosing the backend", () => {
  it.each([
    ["runner-pool", "runner-pool"],
    ["queue", "queue"],
    ["replicate", "replicate"],
  ])("DISPATCH_BACKEND=%s gives the %s backend", (name, backend) => {
    const configured = { ...env, DISPATCH_BACKEND: name, REPLICATE_API_TOKEN: "r8_test", REPLICATE_MODEL_VERSION: "v1" };
    expect(dispatcherFor(configured, configOf(configured)).backend).toBe(backend);
  });

  it("refuses the replicate backend without its token", () => {
    expect(() => configOf({ ...env, DISPATCH_BACKEND: "replicate", REPLICATE_API_TOKEN: "" })).toThrow();
  });

  it("refuses an unknown backend", () => {
    expect(() => configOf({ ...env, DISPATCH_BACKEND: "carrier-pigeon" })).toThrow();
  });
});
