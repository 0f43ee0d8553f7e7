import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { modelName } from "@hvar/contract";
import { describe, expect, it } from "vitest";
import { ensureDevKey } from "../../scripts/stack";
import {
  api,
  download,
  example,
  logLines,
  newKey,
  noisePng,
  sleep,
  stack,
  triggerCron,
  untilDone,
  upscale,
  usageOf,
  verifyWebhook,
  webhookReceiver,
  type Job,
} from "./helpers";

/** The public API of the real stack (wrangler dev + runner), as a customer uses it. */

describe("the stack as npm start leaves it", () => {
  it("is healthy, serves the docs, and created a working development key", async () => {
    expect((await fetch(`${stack.workerUrl}/healthz`)).status).toBe(200);
    const ready = (await (await fetch(`${stack.runnerUrl}/readyz`)).json()) as { status: string; models: { id: string; version: string }[] };
    expect(ready.status).toBe("ready");
    expect(ready.models.map(modelName)).toContain(stack.model);
    expect((await fetch(`${stack.workerUrl}/docs`)).status).toBe(200);
    const usage = await usageOf(stack.devKey.secret);
    expect(usage.keyId).toBe(stack.devKey.id);
  });

  it("keeps the development key across starts, and makes a new one when the state was reset", async () => {
    const listDevKeys = async () => {
      const response = await fetch(`${stack.workerUrl}/admin/keys?owner=local-dev`, { headers: { authorization: `Bearer ${stack.adminSecret}` } });
      return ((await response.json()) as { keys: { id: string }[] }).keys.map((k) => k.id);
    };
    const again = await ensureDevKey(stack.workerUrl, stack.adminSecret, join(stack.dir, ".dev.key"));
    expect(again).toMatchObject({ id: stack.devKey.id, secret: stack.devKey.secret, created: false });
    expect(await listDevKeys()).toEqual([stack.devKey.id]);

    // A key file whose key the worker no longer knows (its local state was deleted).
    const stale = join(stack.dir, "stale.dev.key");
    await writeFile(stale, "HVAR_API_KEY=hvar_sk_gone\nHVAR_API_KEY_ID=key_gonegonegonegonegone\nHVAR_WEBHOOK_SECRET=whsec_gone\n");
    const fresh = await ensureDevKey(stack.workerUrl, stack.adminSecret, stale);
    expect(fresh.created).toBe(true);
    expect(await readFile(stale, "utf8")).toContain(`HVAR_API_KEY=${fresh.secret}`);
    expect((await usageOf(fresh.secret)).keyId).toBe(fresh.id);
  });
});

describe("an upscale", () => {
  it("answers with three signed URLs whose downloads decode at x1, x2 and x4 of the input", async () => {
    const { secret } = await newKey();
    const image = await example("chelsea"); // 256x170 JPEG
    const response = await upscale(secret, image, "scales=1,2,4&format=png", { prefer: "wait=60" });
    expect(response.status).toBe(200);
    const job = (await response.json()) as Job;
    expect(job.status).toBe("succeeded");
    expect(job.input).toMatchObject({ width: 256, height: 170, type: "jpeg" });
    expect(job.model && modelName(job.model)).toBe(stack.model);
    expect(job.usage).toEqual({ inputMp: 0.04352, cacheHit: false, billable: true, billedMp: 0.04352 });

    const outputs = job.outputs ?? [];
    expect(outputs.map((o) => o.scale)).toEqual([1, 2, 4]);
    for (const output of outputs) {
      const url = new URL(output.url);
      expect(url.origin).toBe(stack.workerUrl);
      expect(url.pathname).toBe(`/v1/results/${job.id}/x${output.scale}.png`);
      expect([...url.searchParams.keys()].sort()).toEqual(["exp", "kid", "sig"]);
      expect([output.width, output.height]).toEqual([256 * output.scale, 170 * output.scale]);

      const decoded = await download(output.url);
      expect(decoded.response.headers.get("content-type")).toBe("image/png");
      expect({ format: decoded.format, width: decoded.width, height: decoded.height }).toEqual({
        format: "png",
        width: 256 * output.scale,
        height: 170 * output.scale,
      });
    }
  });

  it("encodes the format asked for (WebP here), and a second identical request is a cache hit, not billed", async () => {
    const { secret } = await newKey();
    const image = await example("astronaut"); // 256x256
    const first = (await (await upscale(secret, image, "scales=2,4&format=webp", { prefer: "wait=60" })).json()) as Job;
    expect(first.status).toBe("succeeded");
    for (const output of first.outputs ?? []) {
      const decoded = await download(output.url);
      expect([decoded.format, decoded.width, decoded.height]).toEqual(["webp", 256 * output.scale, 256 * output.scale]);
    }
    const again = (await (await upscale(secret, image, "scales=4,2&format=webp", { prefer: "wait=60" })).json()) as Job;
    expect(again.status).toBe("succeeded");
    expect(again.usage).toMatchObject({ cacheHit: true, billable: false });
    const usage = await usageOf(secret);
    expect(usage.quota.settledMp).toBeCloseTo(0.065536, 6); // billed once
    expect(usage.buckets[0]).toMatchObject({ jobs: 1, cacheHits: 1 });
  });

  it("refuses altered and expired result URLs with 403", async () => {
    const { secret } = await newKey();
    const job = (await (await upscale(secret, await example("rocket"), "scales=2&format=jpeg", { prefer: "wait=60" })).json()) as Job;
    const url = new URL(job.outputs?.[0]?.url ?? "");
    expect((await download(url.href)).response.status).toBe(200);

    const otherScale = new URL(url.href.replace("/x2.jpeg", "/x1.jpeg"));
    const later = new URL(url.href);
    later.searchParams.set("exp", String(Number(url.searchParams.get("exp")) + 3600));
    const expired = new URL(url.href);
    expired.searchParams.set("exp", String(Math.floor(Date.now() / 1000) - 60));
    for (const bad of [otherScale, later, expired]) {
      const response = await fetch(bad);
      expect(response.status, bad.href).toBe(403);
      expect(response.headers.get("content-type")).toBe("application/problem+json");
    }
  });
});

describe("an asynchronous upscale", () => {
  it("answers 202 at once, ends by itself, and sends a webhook signed with the key's secret", async () => {
    const receiver = await webhookReceiver();
    try {
      const { secret, webhookSecret } = await newKey();
      const query = new URLSearchParams({ scales: "1,2,4", format: "png", webhook_url: receiver.url });
      const response = await upscale(secret, await example("coffee"), query.toString());
      expect(response.status).toBe(202);
      const accepted = (await response.json()) as Job;
      expect(response.headers.get("location")).toBe(`/v1/upscales/${accepted.id}`);
      expect(["queued", "running"]).toContain(accepted.status);

      // Nobody polls: the worker finishes the job in the background and calls the webhook.
      const delivery = await receiver.next(60_000);
      expect(verifyWebhook(webhookSecret, delivery)).toBe(true);
      expect(verifyWebhook(`whsec_${Buffer.alloc(32, 7).toString("base64")}`, delivery)).toBe(false);
      const event = JSON.parse(delivery.body) as { type: string; data: { id: string; status: string } };
      expect(event).toMatchObject({ type: "upscale.succeeded", data: { id: accepted.id, status: "succeeded" } });

      const done = await untilDone(secret, accepted.id);
      expect(done.outputs?.map((o) => [o.scale, o.width, o.height])).toEqual([
        [1, 256, 171],
        [2, 512, 342],
        [4, 1024, 684],
      ]);
      const x4 = await download(done.outputs?.[2]?.url ?? "");
      expect([x4.width, x4.height]).toEqual([1024, 684]);

      // Exactly one delivery, even after the cron trigger has run.
      await triggerCron();
      await expect(receiver.next(2_000)).rejects.toThrow("no webhook arrived");
    } finally {
      await receiver.close();
    }
  });
});

describe("a webhook event", () => {
  it("carries the outputs (signed URLs that download, sizes, content types) and the usage: the receiver needs no call back", async () => {
    const receiver = await webhookReceiver();
    try {
      const { secret } = await newKey();
      const image = await noisePng(48, 32);
      const query = new URLSearchParams({ scales: "2,4", format: "webp", webhook_url: receiver.url });
      const accepted = (await (await upscale(secret, image, query.toString())).json()) as Job;
      const event = JSON.parse((await receiver.next(60_000)).body) as { type: string; data: Job };
      expect(event.type).toBe("upscale.succeeded");
      expect(event.data).toMatchObject({ id: accepted.id, status: "succeeded", usage: { billable: true, billedMp: 0.001536 } });
      expect(event.data.outputs?.map((o) => [o.scale, o.width, o.height, o.contentType])).toEqual([
        [2, 96, 64, "image/webp"],
        [4, 192, 128, "image/webp"],
      ]);
      const x4 = await download(event.data.outputs?.[1]?.url ?? "");
      expect([x4.format, x4.width, x4.height]).toEqual(["webp", 192, 128]);
    } finally {
      await receiver.close();
    }
  });
});

describe("request ids", () => {
  it("of the request that creates a job name the job in the runner's log, every line of it", async () => {
    const { secret } = await newKey();
    const response = await upscale(secret, await noisePng(40, 40), "scales=2&format=png", { prefer: "wait=60" });
    const requestId = response.headers.get("x-request-id");
    const job = (await response.json()) as Job;
    expect(job.status).toBe("succeeded");
    let lines: Record<string, unknown>[] = [];
    for (let i = 0; i < 50 && !lines.some((line) => line.msg === "job succeeded"); i++) {
      await sleep(100);
      lines = (await logLines("runner")).filter((line) => line.jobId === job.id || String(line.path ?? "").includes(job.id));
    }
    expect(lines.map((line) => line.msg)).toEqual(expect.arrayContaining(["job accepted", "job succeeded", "request"]));
    expect(new Set(lines.map((line) => line.requestId))).toEqual(new Set([requestId]));
  });

  it("are in the worker's log of the request", async () => {
    const { secret } = await newKey();
    const response = await upscale(secret, await noisePng(40, 40), "scales=2&format=png", { prefer: "wait=60" });
    const requestId = response.headers.get("x-request-id");
    let lines: Record<string, unknown>[] = [];
    for (let i = 0; i < 50 && lines.length === 0; i++) {
      await sleep(100);
      lines = (await logLines("worker")).filter((line) => line.requestId === requestId);
    }
    expect(lines).toEqual([expect.objectContaining({ method: "POST", path: "/v1/upscales", status: 200 })]);
  });
});

describe("quota", () => {
  it("is used up by billed jobs; the next job gets 429 quota_exceeded as problem+json, and nothing is billed for it", async () => {
    const { secret } = await newKey({ monthlyQuotaMp: 0.05 });
    const first = await upscale(secret, await example("chelsea"), "scales=2&format=png", { prefer: "wait=60" }); // 0.04352 MP
    expect(first.status).toBe(200);
    await first.body?.cancel();

    const second = await upscale(secret, await example("rocket"), "scales=2&format=png", { prefer: "wait=60" }); // 0.043776 MP
    expect(second.status).toBe(429);
    expect(second.headers.get("content-type")).toBe("application/problem+json");
    expect(Number(second.headers.get("retry-after"))).toBeGreaterThan(0);
    const problem = (await second.json()) as { status: number; code: string; title: string; detail: string };
    expect(problem).toMatchObject({ status: 429, code: "quota_exceeded" });
    expect(problem.detail).toContain("0.043776 MP");

    const usage = await usageOf(secret);
    expect(usage.quota).toMatchObject({ monthlyQuotaMp: 0.05, settledMp: 0.04352, reservedMp: 0 });
    expect(usage.buckets.reduce((sum, b) => sum + b.jobs, 0)).toBe(1);
  });

  it("rejects an unknown key with 401 problem+json before reading the image", async () => {
    const response = await api("/v1/upscales", "hvar_sk_not-a-key", { method: "POST", body: await example("chelsea") });
    expect(response.status).toBe(401);
    expect(((await response.json()) as { code: string }).code).toBe("invalid_api_key");
  });
});
