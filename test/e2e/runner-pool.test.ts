import { describe, expect, it } from "vitest";
import { type Job, download, logLines, newKey, noisePng, runnerJobsRunning, sleep, stack, untilDone, upscale, usageOf } from "./helpers";
import { POOL_REPLICAS } from "./setup.pool";

/** 512x512: 484 tiles of the contract model, at least 1.6 s on a replica (POOL_TILES_PER_SECOND). */
const SIDE = 512;
const JOBS = 6;
const INPUT_MP = (SIDE * SIDE) / 1e6;

/** Polls `probe` until it returns something, as a condition rather than a sleep that could race. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** The runner replicas' JSON log lines, each with the replica that wrote it. */
async function replicaLines(): Promise<(Record<string, unknown> & { replica: string })[]> {
  const names = stack.runners.map((_, index) => `runner${index + 1}`);
  const lines = await Promise.all(names.map(async (replica) => (await logLines(replica)).map((line) => ({ ...line, replica }))));
  return lines.flat();
}

/**
 * Three runner replicas share one store behind a round-robin load balancer, the worker's only runner
 * URL (setup.pool.ts), as a Deployment's Pods behind their Service: any replica may get any request
 * about any job. One replica dies (SIGKILL: no draining) while it works; the harness starts it again,
 * as Kubernetes would. Its jobs' records stop their heartbeats, the worker sends them again, and
 * another replica (or the restarted one) takes them over: every job ends, and is billed exactly once.
 */
describe("runner replicas behind a load balancer", () => {
  it("upscale concurrently through any replica, one killed mid-job: every job ends and is billed exactly once", async () => {
    expect(stack.runners).toHaveLength(POOL_REPLICAS);
    expect(stack.balancerUrl).not.toBeNull();
    const { secret } = await newKey();
    const images = await Promise.all(Array.from({ length: JOBS }, () => noisePng(SIDE, SIDE)));
    const responses = await Promise.all(images.map((image) => upscale(secret, image, "scales=2&format=jpeg")));
    expect(responses.map((r) => r.status)).toEqual(Array(JOBS).fill(202));
    const ids = await Promise.all(responses.map(async (r) => ((await r.json()) as Job).id));

    const victim = await until("a replica working on a job", async () => {
      for (const runner of stack.runners) if ((await runnerJobsRunning(runner.metricsUrl)) > 0) return runner;
      return undefined;
    });
    process.kill(victim.pid, "SIGKILL");

    const done = await Promise.all(ids.map((id) => untilDone(secret, id, 150_000)));
    for (const job of done) {
      expect(job.status, JSON.stringify(job.error)).toBe("succeeded");
      expect(job.outputs?.map((o) => [o.scale, o.width, o.height])).toEqual([[2, 2 * SIDE, 2 * SIDE]]);
      expect(job.usage).toMatchObject({ billable: true, billedMp: INPUT_MP });
    }
    const x2 = await download(done[0]?.outputs?.[0]?.url ?? "");
    expect([x2.format, x2.width, x2.height]).toEqual(["jpeg", 2 * SIDE, 2 * SIDE]);

    // Billed exactly once each: the ledger has one row per job, and no reservation is left.
    const usage = await usageOf(secret);
    expect(usage.quota.reservedMp).toBe(0);
    expect(usage.quota.settledMp).toBeCloseTo(JOBS * INPUT_MP, 6);
    expect(usage.buckets.reduce((sum, b) => sum + b.jobs, 0)).toBe(JOBS);
    expect(usage.buckets.reduce((sum, b) => sum + b.billableMp, 0)).toBeCloseTo(JOBS * INPUT_MP, 6);

    const lines = await replicaLines();
    // The killed replica's job was accepted a second time, by the replica that took it over.
    const accepted = lines.filter((line) => line.msg === "job accepted").map((line) => line.jobId);
    expect(accepted.some((id, index) => accepted.indexOf(id) !== index)).toBe(true);
    // No affinity: the polls of one job were answered by more than one replica.
    const pollers = (id: string) => new Set(lines.filter((line) => line.msg === "request" && line.method === "GET" && line.path === `/v1/jobs/${id}`).map((line) => line.replica));
    expect(Math.max(...ids.map((id) => pollers(id).size))).toBeGreaterThan(1);
  });
});
