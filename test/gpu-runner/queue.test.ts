import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type QueueMessage, type RunnerJob, inputKey, jobRecordKey, runnerJobSchema } from "@hvar/contract";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../gpu-runner/src/config";
import { PullClient, QueueApiError } from "../../gpu-runner/src/queue/pull-client";
import { assembleRunner } from "../../gpu-runner/src/runner";
import { signRequest } from "../../gpu-runner/src/server/auth";
import { LocalStore } from "../../gpu-runner/src/storage/local";
import { FakePullQueue } from "../fixtures/queue-pull-fake";
import { FIXTURE_MODELS_DIR, rawImage, silentLog, tempDir } from "./helpers";

const ACCOUNT = "acc0unt";
const QUEUE = "hvar-jobs-id";
const TOKEN = "cf-queues-token-never-logged-0123456789";
const SECRET = "queue-test-secret-0123456789";
/** The lease the runners take, on the fake's own clock. */
const LEASE_MS = 60_000;
const MAX_RETRIES = 2;

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const photo = (width = 70, height = 50) => rawImage(width, height, (x, y) => [x * 3, y * 4, 90]).png().toBuffer();

let fake: FakePullQueue;
let storageDir: string;
/** The bucket the worker and every runner share (R2 in production). */
let bucket: LocalStore;
const stops: (() => Promise<void>)[] = [];

beforeEach(async () => {
  fake = new FakePullQueue({ accountId: ACCOUNT, queueId: QUEUE, token: TOKEN, maxRetries: MAX_RETRIES });
  await fake.listen();
  storageDir = await tempDir("hvar-queue-");
  bucket = new LocalStore(storageDir);
});

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
  await fake.close();
});

const queueEnv = () => ({ HVAR_QUEUE_ACCOUNT_ID: ACCOUNT, HVAR_QUEUE_ID: QUEUE, HVAR_QUEUE_API_TOKEN: TOKEN, HVAR_QUEUE_API_URL: fake.url });

/** A runner with the contract fixture model that pulls from the fake queue, stopped after the test. */
async function queueRunner(env: Record<string, string> = {}, log = silentLog) {
  const config = loadConfig({
    HVAR_MODELS_DIR: FIXTURE_MODELS_DIR,
    HVAR_STORAGE_DIR: storageDir,
    HVAR_DEVICE: "cpu",
    HVAR_CPU_THREADS: "1",
    HVAR_QUEUE_IDLE_WAIT_MS: "20",
    HVAR_QUEUE_VISIBILITY_TIMEOUT_MS: String(LEASE_MS),
    ...queueEnv(),
    ...env,
  });
  const runner = await assembleRunner(config, SECRET, log);
  let stopping: Promise<void> | undefined;
  const shutdown = () => (stopping ??= runner.shutdown());
  stops.push(shutdown);
  return { ...runner, shutdown };
}

/** What the worker's queue backend does (worker/src/dispatch/queue.ts): the input to the bucket, then a message that points at it. */
async function enqueue(id: string, image: Uint8Array, size = { width: 70, height: 50 }, options: Partial<QueueMessage> = {}): Promise<string> {
  await bucket.put(inputKey(id), image, "image/png");
  const message: QueueMessage = {
    v: 1,
    id,
    input: { key: inputKey(id), contentType: "image/png", bytes: image.length, sha256: sha256(image), ...size },
    scales: [1, 4],
    format: "png",
    quality: null,
    temperature: 0,
    cleanup: 1,
    requestId: `req_${id}`,
    ...options,
  };
  return fake.send(message);
}

async function record(id: string): Promise<RunnerJob | undefined> {
  const stored = await bucket.get(jobRecordKey(id));
  return stored && runnerJobSchema.parse(JSON.parse(stored.bytes.toString("utf8")));
}

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const client = () => new PullClient({ api: fake.url, accountId: ACCOUNT, queueId: QUEUE, apiToken: TOKEN });

describe("the pull client, against the local fake of Cloudflare's pull API", () => {
  it("pulls a message with its JSON body as sent, its lease and first attempt, and the backlog", async () => {
    const id = fake.send({ v: 1, id: "j_x" });
    fake.send({ v: 1, id: "j_y" });
    const batch = await client().pull(1, 1000);
    expect(batch.backlog).toBe(2);
    expect(batch.messages).toMatchObject([{ id, attempts: 1, body: JSON.stringify({ v: 1, id: "j_x" }) }]);
    expect(batch.messages[0]?.lease_id).toMatch(/.+/);
  });

  it("removes an acknowledged message from the queue", async () => {
    fake.send({ n: 1 });
    const [message] = (await client().pull(10, 1000)).messages;
    expect(await client().settle({ acks: [message?.lease_id as string], retries: [] })).toEqual([]);
    expect(fake.backlog).toBe(0);
  });

  it("delivers a retried message again once its delay has passed, as its next attempt", async () => {
    fake.send({ n: 1 });
    const [message] = (await client().pull(10, 60_000)).messages;
    await client().settle({ acks: [], retries: [{ leaseId: message?.lease_id as string, delaySeconds: 30 }] });
    expect((await client().pull(10, 60_000)).messages).toEqual([]);
    fake.advance(30_000);
    expect((await client().pull(10, 60_000)).messages).toMatchObject([{ id: message?.id, attempts: 2 }]);
  });

  it("delivers a message again when its lease runs out, and reports an ack on the old lease as not applied", async () => {
    fake.send({ n: 1 });
    const [first] = (await client().pull(10, 5000)).messages;
    fake.advance(5000);
    const [second] = (await client().pull(10, 5000)).messages;
    expect(second).toMatchObject({ id: first?.id, attempts: 2 });
    expect(await client().settle({ acks: [first?.lease_id as string], retries: [] })).toEqual([first?.lease_id]);
    expect(fake.backlog).toBe(1);
  });

  it("sends a message to the dead-letter queue after max_retries retries", async () => {
    const id = fake.send({ n: 1 });
    for (let attempt = 1; attempt <= MAX_RETRIES + 1; attempt++) {
      const [message] = (await client().pull(10, 5000)).messages;
      expect(message?.attempts).toBe(attempt);
      await client().settle({ acks: [], retries: [{ leaseId: message?.lease_id as string, delaySeconds: 0 }] });
    }
    expect(fake.backlog).toBe(0);
    expect(fake.deadLetters).toMatchObject([{ id, attempts: MAX_RETRIES + 1 }]);
  });

  it("fails on a refused token with the API's reason, never the token", async () => {
    const refused = new PullClient({ api: fake.url, accountId: ACCOUNT, queueId: QUEUE, apiToken: "wrong-token" });
    const error = await refused.pull(1, 1000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QueueApiError);
    expect((error as QueueApiError).status).toBe(401);
    expect((error as Error).message).toMatch(/Authentication error/);
    expect((error as Error).message).not.toMatch(/wrong-token/);
  });
});

describe("a runner that pulls jobs from the queue (contract fixture model)", { timeout: 30_000 }, () => {
  it("runs the job, stores its outputs and then its record, and only then acknowledges it", async () => {
    const id = "j_queue_runs";
    const image = await photo();
    const storedAtAck: (RunnerJob | undefined)[] = [];
    fake.onAck = async () => void storedAtAck.push(await record(id));
    await enqueue(id, image);
    const { metricsApp } = await queueRunner();
    await until("the message is acknowledged", () => fake.backlog === 0);

    const job = await record(id);
    expect(job).toMatchObject({ id, status: "succeeded", model: { id: "contract-fixture" }, input: { width: 70, height: 50 } });
    expect(storedAtAck).toEqual([job]);
    expect(job?.outputs?.map((o) => [o.scale, o.width, o.height])).toEqual([
      [1, 70, 50],
      [4, 280, 200],
    ]);
    for (const output of job?.outputs ?? []) expect(sha256((await bucket.get(output.key))?.bytes ?? new Uint8Array())).toBe(output.sha256);
    expect(fake.deliveries).toEqual([{ id: expect.any(String), attempts: 1 }]);
    const metrics = await (await metricsApp.request("/metrics")).text();
    expect(metrics).toMatch(/^hvar_runner_queue_messages_total\{outcome="succeeded"\} 1$/m);
  });

  it("exports the backlog it sees for the autoscaler", async () => {
    for (let i = 0; i < 5; i++) fake.send({ v: 1, unreadable: i });
    const { metricsApp } = await queueRunner({ HVAR_QUEUE_CONCURRENCY: "1" });
    await until("a pull", () => fake.deliveries.length > 0);
    expect(await (await metricsApp.request("/metrics")).text()).toMatch(/^hvar_runner_queue_backlog_messages 5$/m);
  });

  it("stores a failed record with the reason for an image that is not the one the worker billed, and acknowledges it", async () => {
    const id = "j_queue_wrong_size";
    await enqueue(id, await photo(), { width: 71, height: 50 });
    await queueRunner();
    await until("the message is acknowledged", () => fake.backlog === 0);
    expect(await record(id)).toMatchObject({ id, status: "failed", error: { code: "image_size_mismatch" } });
    expect((await record(id))?.outputs).toBeUndefined();
    expect(fake.deadLetters).toEqual([]);
  });

  it("refuses an input that is not the one the message names by its sha256", async () => {
    const id = "j_queue_swapped";
    await enqueue(id, await photo());
    await bucket.put(inputKey(id), await photo(60, 40), "image/png");
    await queueRunner();
    await until("the message is acknowledged", () => fake.backlog === 0);
    expect(await record(id)).toMatchObject({ status: "failed", error: { code: "input_mismatch" } });
  });

  it("refuses, without reading it, an input larger than the runner takes", async () => {
    const id = "j_queue_too_big";
    const image = await photo();
    await enqueue(id, image);
    await queueRunner({ HVAR_MAX_BODY_BYTES: String(image.length - 1) });
    await until("the message is acknowledged", () => fake.backlog === 0);
    expect(await record(id)).toMatchObject({ status: "failed", error: { code: "payload_too_large" } });
  });

  it("does no work for a job canceled before it was pulled (its input deleted), and acknowledges it", async () => {
    const id = "j_queue_canceled";
    await enqueue(id, await photo());
    await rm(join(storageDir, inputKey(id)));
    const { metricsApp } = await queueRunner();
    await until("the message is acknowledged", () => fake.backlog === 0);
    expect(await record(id)).toBeUndefined();
    const metrics = await (await metricsApp.request("/metrics")).text();
    expect(metrics).toMatch(/^hvar_runner_queue_messages_total\{outcome="canceled"\} 1$/m);
    expect(metrics).not.toMatch(/hvar_runner_jobs_total\{outcome="accepted"\}/);
  });

  it("acknowledges a job delivered again after its record was stored, without running it again", async () => {
    const id = "j_queue_twice";
    await enqueue(id, await photo());
    await queueRunner();
    await until("the first delivery is acknowledged", () => fake.backlog === 0);
    const first = await record(id);
    await enqueue(id, await photo());
    await until("the second delivery is acknowledged", () => fake.backlog === 0);
    expect(await record(id)).toEqual(first);
  });

  it("gives back a message it cannot read, which ends in the dead-letter queue after max_retries", async () => {
    const id = fake.sendText("not json");
    await queueRunner({ HVAR_QUEUE_RETRY_DELAY_S: "0" });
    await until("the message is dead-lettered", () => fake.deadLetters.length > 0);
    expect(fake.deadLetters).toEqual([{ id, body: "not json", attempts: MAX_RETRIES + 1 }]);
  });

  it("waits for the job it runs to end before starting one its memory cannot take beside it", async () => {
    const big = await photo(160, 120);
    // Memory for one such job at a time (about 6 MB each), not two.
    await enqueue("j_queue_first", big, { width: 160, height: 120 });
    await enqueue("j_queue_second", big, { width: 160, height: 120 });
    await queueRunner({ HVAR_QUEUE_CONCURRENCY: "2", HVAR_JOBS_MEMORY_MB: "8", HVAR_MAX_TILES_PER_SECOND: "40" });
    await until("both are acknowledged", () => fake.backlog === 0);
    expect(await record("j_queue_first")).toMatchObject({ status: "succeeded" });
    expect(await record("j_queue_second")).toMatchObject({ status: "succeeded" });
    expect(fake.deliveries.map((d) => d.attempts)).toEqual([1, 1]);
  });

  it("gives back a job that does not fit beside the runner's other work, to be delivered again after the runner's retry-after", async () => {
    const big = await photo(160, 120);
    const runner = await queueRunner({ HVAR_JOBS_MEMORY_MB: "8", HVAR_MAX_TILES_PER_SECOND: "40" });
    const path = "/v1/jobs?id=j_http_first&scales=1,4";
    expect((await runner.app.request(path, { method: "POST", body: big, headers: signRequest(SECRET, "POST", path, big) })).status).toBe(202);
    await enqueue("j_queue_later", big, { width: 160, height: 120 });
    await until("it is given back", () => fake.deliveries.length === 1 && fake.waiting(fake.deliveries[0]?.id as string));
    await until("the HTTP job is stored", async () => (await record("j_http_first"))?.status === "succeeded");
    fake.advance(LEASE_MS);
    await until("it is acknowledged", () => fake.backlog === 0);
    expect(await record("j_queue_later")).toMatchObject({ status: "succeeded" });
    expect(fake.deliveries.map((d) => d.attempts)).toEqual([1, 2]);
  });

  it("on shutdown stops pulling, and finishes and acknowledges the job it holds", async () => {
    const id = "j_queue_drain";
    await enqueue(id, await photo());
    const runner = await queueRunner({ HVAR_MAX_TILES_PER_SECOND: "10" });
    await until("the job is pulled", () => fake.deliveries.length === 1);
    await runner.shutdown();
    expect(fake.backlog).toBe(0);
    expect(await record(id)).toMatchObject({ status: "succeeded" });
    fake.send({ v: 1, later: true });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(fake.deliveries).toHaveLength(1);
  });

  it("never logs the API token, even when the queue refuses it", async () => {
    const lines: string[] = [];
    const log = pino({ level: "trace" }, { write: (line: string) => void lines.push(line) });
    await queueRunner({ HVAR_QUEUE_API_TOKEN: "refused-token-0123456789" }, log);
    await until("a refused pull is logged", () => lines.some((l) => l.includes("Authentication error")));
    expect(lines.join("")).not.toMatch(/refused-token|cf-queues-token/);
  });

  it("refuses a partial queue configuration, naming the settings it needs", () => {
    expect(() => loadConfig({ HVAR_QUEUE_ID: QUEUE })).toThrow(/HVAR_QUEUE_ACCOUNT_ID, HVAR_QUEUE_ID and HVAR_QUEUE_API_TOKEN/);
  });
});

describe("a runner that dies mid-job", { timeout: 60_000 }, () => {
  const main = fileURLToPath(new URL("../../gpu-runner/src/main.ts", import.meta.url));
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

  it("never acknowledges it: after the lease runs out, the job is delivered again and another runner finishes it", async () => {
    const id = "j_queue_orphan";
    await enqueue(id, await photo());
    // A real runner process, slowed to a tile a second so that it is killed mid-job.
    const child = spawn(process.execPath, ["--import", tsx, main], {
      env: {
        PATH: process.env.PATH ?? "",
        RUNNER_HMAC_SECRET: SECRET,
        HVAR_RUNNER_PORT: "0",
        HVAR_METRICS_PORT: "0",
        HVAR_LOG_LEVEL: "warn",
        HVAR_MODELS_DIR: FIXTURE_MODELS_DIR,
        HVAR_STORAGE_DIR: storageDir,
        HVAR_DEVICE: "cpu",
        HVAR_CPU_THREADS: "1",
        HVAR_MAX_TILES_PER_SECOND: "1",
        HVAR_QUEUE_VISIBILITY_TIMEOUT_MS: String(LEASE_MS),
        ...queueEnv(),
      },
      stdio: "ignore",
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    stops.push(async () => void (child.exitCode === null && child.kill("SIGKILL")));
    await until("the child runner holds the job", () => fake.leased(fake.deliveries[0]?.id ?? ""));
    child.kill("SIGKILL");
    await exited;
    expect(await record(id)).toBeUndefined();
    expect(fake.backlog).toBe(1);

    await queueRunner();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(fake.deliveries).toHaveLength(1); // still leased to the dead runner
    fake.advance(LEASE_MS);
    await until("the second runner acknowledges it", () => fake.backlog === 0);
    expect(fake.deliveries.map((d) => d.attempts)).toEqual([1, 2]);
    expect(await record(id)).toMatchObject({ status: "succeeded" });
  });
});
