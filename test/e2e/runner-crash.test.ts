import { describe, expect, it } from "vitest";
import {
  type Job,
  download,
  newKey,
  noisePng,
  readJob,
  runnerJobsRunning,
  sleep,
  stack,
  untilDone,
  upscale,
  usageOf,
  verifyWebhook,
  webhookReceiver,
} from "./helpers";

/**
 * The runner dies (SIGKILL: no draining) while it works on a job. The harness starts it again, as
 * an orchestrator would; the restarted runner no longer knows the job, so the worker sends it again
 * from the input it kept. Nothing is lost: the job succeeds, is billed once, one webhook is sent.
 */
describe("the runner killed mid-job", () => {
  it("loses nothing: the job is sent again, succeeds, is billed exactly once and sends one webhook", async () => {
    const receiver = await webhookReceiver();
    try {
      const { secret, webhookSecret } = await newKey();
      // 1849 tiles of the contract model (tile 32, overlap 8): at the e2e runner's ceiling of
      // E2E_RUNNER_TILES_PER_SECOND (setup.ts) the job runs for at least 3.7 s, however fast the CPU.
      const image = await noisePng(1024, 1024);
      const query = new URLSearchParams({ scales: "2", format: "jpeg", webhook_url: receiver.url });
      const response = await upscale(secret, image, query.toString());
      expect(response.status).toBe(202);
      const { id } = (await response.json()) as Job;

      const deadline = Date.now() + 30_000;
      while ((await runnerJobsRunning()) < 1) {
        if (Date.now() > deadline) throw new Error("the runner never started the job");
        await sleep(50);
      }
      process.kill(stack.runnerPid, "SIGKILL");

      // While the runner is down the job is still running and its quota is held, not billed.
      const during = await readJob(secret, id);
      expect(during.status).toBe("running");
      expect((await usageOf(secret)).quota).toMatchObject({ reservedMp: 1.048576, settledMp: 0 });

      const done = await untilDone(secret, id, 110_000);
      expect(done.status).toBe("succeeded");
      expect(done.outputs?.map((o) => [o.scale, o.width, o.height])).toEqual([[2, 2048, 2048]]);
      const x2 = await download(done.outputs?.[0]?.url ?? "");
      expect([x2.format, x2.width, x2.height]).toEqual(["jpeg", 2048, 2048]);

      const usage = await usageOf(secret);
      expect(usage.quota).toMatchObject({ reservedMp: 0, settledMp: 1.048576 });
      expect(usage.buckets.reduce((sum, b) => sum + b.jobs, 0)).toBe(1);

      const delivery = await receiver.next(30_000);
      expect(verifyWebhook(webhookSecret, delivery)).toBe(true);
      expect(JSON.parse(delivery.body)).toMatchObject({ type: "upscale.succeeded", data: { id, status: "succeeded" } });
      await expect(receiver.next(1_000)).rejects.toThrow("no webhook arrived");

      // The restarted runner serves new work.
      expect((await fetch(`${stack.runnerUrl}/readyz`)).status).toBe(200);
    } finally {
      await receiver.close();
    }
  });
});
