import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { discoverModels } from "../../gpu-runner/src/model/manifest";
import { HvarClient, HvarError, type Upscale, type UpscaleStatus, verifyWebhook } from "../../packages/client/src/index";
import { download, example, newKey, noisePng, stack, webhookReceiver } from "./helpers";
import { E2E_MODELS_DIR } from "./setup";

/**
 * The client package (packages/client) against the real stack: what a customer's program sees.
 * Every test makes its own key, so quotas and jobs do not mix with the other files'.
 */
async function client(): Promise<{ hvar: HvarClient; webhookSecret: string }> {
  const { secret, webhookSecret } = await newKey();
  return { hvar: new HvarClient({ baseUrl: stack.workerUrl, apiKey: secret }), webhookSecret };
}

const sizes = (job: Upscale) => job.outputs?.map((o) => [o.scale, o.width, o.height]);

describe("@hvar/client against the stack", () => {
  it("upscales with Prefer: wait and answers the succeeded job, whose signed URLs download at x2 and x4", async () => {
    const { hvar } = await client();
    const job = await hvar.upscale(await example("chelsea"), { scales: [2, 4], format: "png", wait: 60 });
    expect(job.status).toBe("succeeded");
    expect(sizes(job)).toEqual([
      [2, 512, 340],
      [4, 1024, 680],
    ]);
    const x4 = await download(job.outputs?.[1]?.url ?? "");
    expect([x4.format, x4.width, x4.height]).toEqual(["png", 1024, 680]);
    expect(await hvar.get(job.id)).toMatchObject({ id: job.id, status: "succeeded" });
  });

  it("polls the Location of a 202 until the job ends, reporting each status, from a Blob or a stream", async () => {
    const { hvar } = await client();
    const statuses: UpscaleStatus[] = [];
    const photo = await example("astronaut");
    const fromBlob = await hvar.upscale(new Blob([photo], { type: "image/jpeg" }), { scales: [1, 2], format: "webp", pollIntervalMs: 200, onStatus: (job) => statuses.push(job.status) });
    expect(sizes(fromBlob)).toEqual([
      [1, 256, 256],
      [2, 512, 512],
    ]);
    expect(statuses[0]).toMatch(/^(queued|running)$/);
    expect(statuses.at(-1)).toBe("succeeded");

    const stream = new Blob([await example("rocket")]).stream();
    const fromStream = await hvar.upscale(stream, { scales: [2], format: "jpeg", quality: 80 });
    expect(fromStream.options).toMatchObject({ scales: [2], format: "jpeg", quality: 80 });
  });

  it("replays a job for the same Idempotency-Key and body, and throws HvarError 409 for another body", async () => {
    const { hvar } = await client();
    const photo = await example("coffee");
    const first = await hvar.upscale(photo, { scales: [2], format: "png", idempotencyKey: "order-42", wait: 60 });
    const again = await hvar.upscale(photo, { scales: [2], format: "png", idempotencyKey: "order-42", wait: 60 });
    expect(again.id).toBe(first.id);

    const error = await hvar.upscale(await example("chelsea"), { scales: [2], format: "png", idempotencyKey: "order-42" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HvarError);
    expect(error).toMatchObject({ status: 409, code: "idempotency_key_reused", type: "https://hvar.dev/problems/idempotency_key_reused" });
    expect((error as HvarError).problem.jobId).toBe(first.id);
  });

  it("surfaces the API's problems as HvarError: a wrong key, invalid options, an unknown job", async () => {
    const { hvar } = await client();
    const wrongKey = new HvarClient({ baseUrl: stack.workerUrl, apiKey: "hvar_sk_not-a-real-key" });
    await expect(wrongKey.usage()).rejects.toMatchObject({ name: "HvarError", status: 401, code: "invalid_api_key" });
    const invalid = hvar.upscale(await example("chelsea"), { scales: [3 as 2] });
    await expect(invalid).rejects.toMatchObject({ status: 400, code: "invalid_options" });
    await expect(hvar.get("j_aaaaaaaaaaaaaaaaaaaa")).rejects.toMatchObject({ status: 404, code: "job_not_found" });
  });

  it("reads the served model: the stack's runner's version, scales, whether it samples detail and takes a clean-up strength", async () => {
    const { hvar } = await client();
    const served = await hvar.model();
    // The runner serves the first valid model of the folder (scripts/stack.ts reads it the same way).
    const [model] = (await discoverModels(E2E_MODELS_DIR)).models;
    expect(served.version).toBe(`${model?.manifest.id}@${model?.manifest.version}`);
    expect(served.scales).toEqual([1, 2, 4]);
    expect(served.detail.sampling).toBe((model?.manifest.tokens ?? 0) > 0); // a model samples when it draws tokens
    expect(served.cleanup.adjustable).toBe(model?.manifest.cleanup ?? false);
  });

  it("upscales at a chosen clean-up strength: at 0, x1 is the input as it came", async ({ skip }) => {
    const { hvar } = await client();
    if (!(await hvar.model()).cleanup.adjustable) skip("the served model has no clean-up setting");
    const photo = await noisePng(48, 40);
    const pixels = async (job: Upscale) => sharp(Buffer.from(await (await fetch(job.outputs?.[0]?.url ?? "")).arrayBuffer())).raw().toBuffer();
    const none = await hvar.upscale(photo, { scales: [1], format: "png", cleanup: 0, wait: 60 });
    const byDefault = await hvar.upscale(photo, { scales: [1], format: "png", wait: 60 });
    expect([none.options.cleanup, byDefault.options.cleanup]).toEqual([0, (await hvar.model()).cleanup.default]);
    // The photo is noise through and through: auto cleans it fully, and the job says so.
    expect([none.cleanupApplied, byDefault.cleanupApplied]).toEqual([0, 1]);
    const input = await sharp(photo).raw().toBuffer();
    expect((await pixels(none)).equals(input)).toBe(true);
    expect((await pixels(byDefault)).equals(input)).toBe(false);
  });

  it("reads the key's usage, with the billed megapixels of its jobs", async () => {
    const { hvar } = await client();
    // Billed because no other test sends this image (helpers never return one twice): a cache hit
    // of another key's job would be free and settle nothing.
    const job = await hvar.upscale(await noisePng(96, 64), { scales: [2], format: "png", wait: 60 });
    const usage = await hvar.usage({ granularity: "month" });
    expect(usage.granularity).toBe("month");
    expect(usage.quota.settledMp).toBeCloseTo(job.usage.inputMp, 6);
    expect(usage.buckets.reduce((sum, bucket) => sum + bucket.jobs, 0)).toBe(1);
  });

  it("reports progress while it waits, and cancels a running upscale, which then ends the wait with job_canceled", async () => {
    const { hvar } = await client();
    const job = await hvar.upscale(await noisePng(1024, 1024), { scales: [2], format: "jpeg", poll: false });
    let canceling: Promise<Upscale> | undefined;
    const waiting = hvar.waitFor(job.id, {
      pollIntervalMs: 50,
      onProgress: (progress) => {
        if (progress.tilesDone > 0) canceling ??= hvar.cancel(job.id);
      },
    });
    await expect(waiting).rejects.toMatchObject({ name: "HvarError", code: "job_canceled" });
    expect(await canceling).toMatchObject({ id: job.id, status: "canceled" });
  });

  it("lists the key's upscales and deletes one, after which reading it throws 410 job_deleted", async () => {
    const { hvar } = await client();
    const job = await hvar.upscale(await noisePng(48, 32), { scales: [2], format: "png", wait: 60 });
    expect((await hvar.list()).data.map((j) => j.id)).toEqual([job.id]);
    await hvar.delete(job.id);
    await expect(hvar.get(job.id)).rejects.toMatchObject({ status: 410, code: "job_deleted" });
    const all: string[] = [];
    for await (const j of hvar.listAll()) all.push(j.id);
    expect(all).toEqual([]);
  });

  it("verifies the webhook the worker sends for a job, with the key's webhook secret", async () => {
    const receiver = await webhookReceiver();
    try {
      const { hvar, webhookSecret } = await client();
      const job = await hvar.upscale(await example("chelsea"), { scales: [2], format: "png", webhookUrl: receiver.url, poll: false });
      const delivery = await receiver.next(60_000);
      const headers = Object.fromEntries(Object.entries(delivery.headers).filter((entry): entry is [string, string] => typeof entry[1] === "string"));
      const event = await verifyWebhook(webhookSecret, delivery.body, headers);
      expect(event).toMatchObject({ type: "upscale.succeeded", data: { id: job.id, status: "succeeded" } });
      await expect(verifyWebhook(`whsec_${Buffer.alloc(32, 7).toString("base64")}`, delivery.body, headers)).rejects.toMatchObject({ reason: "invalid_signature" });
      expect(await hvar.waitFor(job.id)).toMatchObject({ status: "succeeded" });
    } finally {
      await receiver.close();
    }
  });
});
