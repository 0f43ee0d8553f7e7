import { describe, expect, it } from "vitest";
import { signRequest } from "../../gpu-runner/src/server/auth";
import { type Job, api, download, newKey, noisePng, readJob, sleep, stack, untilDone, upscale, usageOf } from "./helpers";

/**
 * The key's jobs through the real stack: the list, progress while a job runs on the runner, cancel
 * (the runner stops the job's work) and delete (the results go).
 */
interface Page {
  data: Job[];
  nextCursor: string | null;
}
type Running = Job & { progress?: { tilesDone: number; tilesTotal: number; fraction: number } };

/** A job of noise big enough to keep the CPU runner busy for seconds, read once the runner has run some of its tiles. */
async function runningJob(secret: string): Promise<Running> {
  const response = await upscale(secret, await noisePng(1024, 1024), "scales=2&format=jpeg");
  expect(response.status).toBe(202);
  const { id } = (await response.json()) as Job;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const job = (await readJob(secret, id)) as Running;
    if (job.status !== "running" && job.status !== "queued") throw new Error(`job ${id} ended (${job.status}) before it was seen running`);
    if (job.progress && job.progress.tilesDone > 0) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} never reported progress`);
    await sleep(50);
  }
}

/** The job as the runner itself reports it (signed like the worker's calls). */
async function atRunner(id: string): Promise<{ status: string; error?: { code: string } }> {
  const path = `/v1/jobs/${id}`;
  const response = await fetch(`${stack.runnerUrl}${path}`, { headers: signRequest(stack.runnerSecret, "GET", path, new Uint8Array()) });
  return (await response.json()) as { status: string; error?: { code: string } };
}

async function runnerQueueDepth(): Promise<number> {
  const text = await (await fetch(`${stack.metricsUrl}/metrics`)).text();
  return Number(/^hvar_runner_queue_depth_tiles (\d+)$/m.exec(text)?.[1]);
}

async function list(secret: string, query: string): Promise<Page> {
  const response = await api(`/v1/upscales?${query}`, secret);
  expect(response.status).toBe(200);
  return (await response.json()) as Page;
}

/** A small job that succeeds at once, of an image no other test sends. */
async function succeeded(secret: string): Promise<Job> {
  const response = await upscale(secret, await noisePng(48, 32), "scales=2&format=png", { prefer: "wait=60" });
  expect(response.status).toBe(200);
  return (await response.json()) as Job;
}

describe("GET /v1/upscales", () => {
  it("lists the key's upscales newest first, a page at a time", async () => {
    const { secret } = await newKey();
    const older = await succeeded(secret);
    const newer = await succeeded(secret);
    const first = await list(secret, "limit=1");
    expect(first.data.map((j) => j.id)).toEqual([newer.id]);
    const second = await list(secret, `limit=1&cursor=${first.nextCursor}`);
    expect(second.data.map((j) => j.id)).toEqual([older.id]);
    expect(second.nextCursor).toBeNull();
  });

  it("filters by status", async () => {
    const { secret } = await newKey();
    const done = await succeeded(secret);
    const running = await runningJob(secret);
    expect((await list(secret, "status=running")).data.map((j) => j.id)).toEqual([running.id]);
    expect((await list(secret, "status=succeeded")).data.map((j) => j.id)).toEqual([done.id]);
    await api(`/v1/upscales/${running.id}/cancel`, secret, { method: "POST" });
  });
});

describe("progress", () => {
  it("counts the tiles of a running upscale through the model", async () => {
    const { secret } = await newKey();
    const job = await runningJob(secret);
    const { tilesDone, tilesTotal, fraction } = job.progress ?? { tilesDone: 0, tilesTotal: 0, fraction: 0 };
    expect(tilesTotal).toBeGreaterThan(1);
    expect(tilesDone).toBeGreaterThan(0);
    expect(fraction).toBeCloseTo(tilesDone / tilesTotal, 10);
    const done = await untilDone(secret, job.id);
    expect(done.status).toBe("succeeded");
    expect(done).not.toHaveProperty("progress");
  });
});

describe("POST /v1/upscales/{id}/cancel", () => {
  it("stops the work on the runner: the job's tiles leave its queue and the runner ends it job_canceled", async () => {
    const { secret } = await newKey();
    const job = await runningJob(secret);
    const response = await api(`/v1/upscales/${job.id}/cancel`, secret, { method: "POST" });
    expect(response.status).toBe(200);
    expect(((await response.json()) as Job).status).toBe("canceled");
    expect(await atRunner(job.id)).toMatchObject({ status: "failed", error: { code: "job_canceled" } });
    expect(await runnerQueueDepth()).toBe(0);
  });

  it("refunds the job: nothing stays reserved and nothing is billed", async () => {
    const { secret } = await newKey();
    const job = await runningJob(secret);
    expect((await usageOf(secret)).quota.reservedMp).toBeCloseTo(1.048576, 6);
    await api(`/v1/upscales/${job.id}/cancel`, secret, { method: "POST" });
    const usage = await usageOf(secret);
    expect(usage.quota).toMatchObject({ reservedMp: 0, settledMp: 0 });
    expect(usage.buckets.reduce((sum, b) => sum + b.jobs, 0)).toBe(0);
    expect((await readJob(secret, job.id)).status).toBe("canceled");
  });

  it("refuses an upscale that already succeeded with 409 job_already_succeeded", async () => {
    const { secret } = await newKey();
    const job = await succeeded(secret);
    const response = await api(`/v1/upscales/${job.id}/cancel`, secret, { method: "POST" });
    expect(response.status).toBe(409);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(await response.json()).toMatchObject({ code: "job_already_succeeded", jobId: job.id });
  });
});

describe("DELETE /v1/upscales/{id}", () => {
  it("deletes the results at once: the signed URLs and the upscale answer 410, and the list leaves it out", async () => {
    const { secret } = await newKey();
    const job = await succeeded(secret);
    const url = job.outputs?.[0]?.url ?? "";
    expect((await download(url)).response.status).toBe(200);
    const response = await api(`/v1/upscales/${job.id}`, secret, { method: "DELETE" });
    expect(response.status).toBe(204);
    expect((await fetch(url)).status).toBe(410);
    const read = await api(`/v1/upscales/${job.id}`, secret);
    expect(read.status).toBe(410);
    expect(await read.json()).toMatchObject({ code: "job_deleted" });
    expect((await list(secret, "")).data).toEqual([]);
  });
});
