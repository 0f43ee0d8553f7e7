import { SELF, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { fromBase64, hmacSha256, toBase64 } from "../../worker/src/security/crypto";
import { deliverDue } from "../../worker/src/webhooks/deliver";
import { type WebhookEvent, webhookEventSchema } from "../../worker/src/jobs/notify";
import { BASE, jobCount, newKey, stubOutput, upscale, withKey } from "./helpers";
import { png } from "./images";
import { fetched, redirect, requests, serve, uniquePath } from "./origin";

const [runner = ""] = env.RUNNER_URLS.split(",");

interface Received {
  headers: Record<string, string>;
  body: string;
}

/** A receiver on the fake internet at a public https URL of its own, answering `status`. */
async function receiver(status = 204): Promise<string> {
  const url = `https://hooks.example${uniquePath()}`;
  await serve(url, null, { status });
  return url;
}

/** The POSTs the receiver got so far. */
async function posts(url: string): Promise<Received[]> {
  return (await requests(url)).filter((r) => r.method === "POST");
}

/** Waits (a bounded number of polls) until the receiver got `count` POSTs. */
async function received(url: string, count: number): Promise<Received[]> {
  for (let i = 0; i < 200; i++) {
    const list = await posts(url);
    if (list.length >= count) return list;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return posts(url);
}

/** The receiver's side of Standard Webhooks. */
async function verify(secret: string, delivery: Received): Promise<boolean> {
  const { "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": signature } = delivery.headers;
  const expected = toBase64(await hmacSha256(fromBase64(secret.replace(/^whsec_/, "")), `${id}.${timestamp}.${delivery.body}`));
  return signature === `v1,${expected}`;
}

const webhookQuery = (url: string) => `webhook_url=${encodeURIComponent(url)}`;

/** The event of the receiver's first delivery. */
async function eventOf(url: string): Promise<WebhookEvent> {
  const [delivery] = await received(url, 1);
  if (!delivery) throw new Error("no delivery");
  return JSON.parse(delivery.body) as WebhookEvent;
}

describe("webhooks", () => {
  it("posts a signed upscale.succeeded event when the job ends", async () => {
    const { secret, webhookSecret } = await newKey();
    const hook = await receiver();
    const response = await upscale(secret, await png(20, 20), { query: webhookQuery(hook) });
    const job = await response.json<{ id: string }>();
    const [delivery] = await received(hook, 1);
    if (!delivery) throw new Error("no delivery");
    expect(JSON.parse(delivery.body)).toMatchObject({ type: "upscale.succeeded", data: { id: job.id, status: "succeeded" } });
    expect(delivery.headers["webhook-id"]).toMatch(/^msg_/);
    expect(await verify(webhookSecret, delivery)).toBe(true);
  });

  it("posts upscale.failed with the error when the job fails", async () => {
    const { secret } = await newKey();
    const hook = await receiver();
    await upscale(secret, await png(20, 20, { text: { "hvar-test": "fail" } }), { query: webhookQuery(hook) });
    const [delivery] = await received(hook, 1);
    expect(JSON.parse(delivery?.body ?? "{}")).toMatchObject({ type: "upscale.failed", data: { status: "failed", error: { code: "inference_failed" } } });
  });

  it("carries a succeeded job's outputs: signed URLs that download, sizes and content types", async () => {
    const { secret } = await newKey();
    const hook = await receiver();
    const image = await png(20, 20);
    const job = await (await upscale(secret, image, { query: `scales=2,4&format=png&${webhookQuery(hook)}` })).json<{ id: string }>();
    const event = await eventOf(hook);
    expect(event.type).toBe("upscale.succeeded");
    const outputs = event.type === "upscale.succeeded" ? event.data.outputs : [];
    expect(outputs.map(({ scale, width, height, contentType }) => ({ scale, width, height, contentType }))).toEqual([
      { scale: 2, width: 40, height: 40, contentType: "image/png" },
      { scale: 4, width: 80, height: 80, contentType: "image/png" },
    ]);
    const download = await SELF.fetch(outputs[1]?.url ?? "");
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(stubOutput(image, job.id, 4));
  });

  it("carries a succeeded job's usage: the megapixels billed", async () => {
    const { secret } = await newKey();
    const hook = await receiver();
    await upscale(secret, await png(20, 20), { query: webhookQuery(hook) });
    expect((await eventOf(hook)).data.usage).toEqual({ inputMp: 0.0004, cacheHit: false, billable: true, billedMp: 0.0004 });
  });

  it("carries a failed job's error, and nothing billed", async () => {
    const { secret } = await newKey();
    const hook = await receiver();
    await upscale(secret, await png(20, 20, { text: { "hvar-test": "fail" } }), { query: webhookQuery(hook) });
    const event = await eventOf(hook);
    expect(event.data).toMatchObject({ error: { code: "inference_failed" }, usage: { billedMp: 0 } });
    expect(event.data).not.toHaveProperty("outputs");
  });

  it("carries a result-cache hit's own outputs, not billed", async () => {
    const { secret } = await newKey();
    const image = await png(20, 20);
    await upscale(secret, image, { query: "scales=2" });
    const hook = await receiver();
    const cached = await (await upscale(secret, image, { query: `scales=2&${webhookQuery(hook)}` })).json<{ id: string }>();
    const event = await eventOf(hook);
    expect(event.data).toMatchObject({ id: cached.id, usage: { cacheHit: true, billedMp: 0 }, outputs: [{ scale: 2 }] });
  });

  it("carries a canceled job, and nothing billed", async () => {
    const { secret } = await newKey();
    const hook = await receiver();
    const job = await (await upscale(secret, await png(20, 20, { text: { "hvar-test": "hang" } }), { query: webhookQuery(hook), headers: { prefer: "respond-async" } })).json<{ id: string }>();
    await withKey(secret, `/v1/upscales/${job.id}/cancel`, { method: "POST" });
    const event = await eventOf(hook);
    expect(event).toMatchObject({ type: "upscale.canceled", data: { id: job.id, status: "canceled", usage: { billable: false, billedMp: 0 } } });
    expect(event.data).not.toHaveProperty("outputs");
  });

  it("is one of the event schemas of the OpenAPI document, for every ending", async () => {
    const { secret } = await newKey();
    const [succeeded, failed, canceled] = [await receiver(), await receiver(), await receiver()];
    await upscale(secret, await png(20, 20), { query: webhookQuery(succeeded) });
    await upscale(secret, await png(20, 20, { text: { "hvar-test": "fail" } }), { query: webhookQuery(failed) });
    const hanging = await (await upscale(secret, await png(20, 20, { text: { "hvar-test": "hang" } }), { query: webhookQuery(canceled), headers: { prefer: "respond-async" } })).json<{ id: string }>();
    await withKey(secret, `/v1/upscales/${hanging.id}/cancel`, { method: "POST" });
    const bodies = await Promise.all([succeeded, failed, canceled].map(async (hook) => (await received(hook, 1))[0]?.body));
    expect(bodies.map((body) => webhookEventSchema.safeParse(JSON.parse(body ?? "{}")).error)).toEqual([undefined, undefined, undefined]);
  });

  it("retries a failed delivery later with the same webhook-id", async () => {
    const { secret, webhookSecret } = await newKey();
    const hook = await receiver(500);
    await upscale(secret, await png(20, 20), { query: webhookQuery(hook) });
    await received(hook, 1);
    await deliverDue(env.DB, Date.now() + 10 * 60_000);
    const [first, second] = await received(hook, 2);
    expect(second?.headers["webhook-id"]).toBe(first?.headers["webhook-id"]);
    expect(await verify(webhookSecret, second ?? { headers: {}, body: "" })).toBe(true);
  });

  it("does not deliver again once delivered", async () => {
    const { secret } = await newKey();
    const hook = await receiver();
    await upscale(secret, await png(20, 20), { query: webhookQuery(hook) });
    await received(hook, 1);
    await deliverDue(env.DB, Date.now() + 24 * 3600_000);
    expect(await posts(hook)).toHaveLength(1);
  });

  it("does not follow a receiver's redirect: the attempt fails and the target is never contacted", async () => {
    const { secret } = await newKey();
    const hook = `https://hooks.example${uniquePath()}`;
    const target = `https://hooks.example${uniquePath()}/moved`;
    await redirect(hook, target, 307);
    const job = await (await upscale(secret, await png(20, 20), { query: webhookQuery(hook) })).json<{ id: string }>();
    await received(hook, 1);
    expect(await fetched(target)).toEqual([]);
    const row = await env.DB.prepare("SELECT last_status, delivered_at FROM webhook_deliveries WHERE job_id = ?").bind(job.id).first();
    expect(row).toEqual({ last_status: 307, delivered_at: null });
  });

  it("delivers over plain http to an origin of the development allow-list (ALLOW_INSECURE_ORIGINS)", async () => {
    const { secret } = await newKey();
    const hook = `http://dev-origin.example${uniquePath()}`;
    await serve(hook, null, { status: 204 });
    const response = await upscale(secret, await png(20, 20), { query: webhookQuery(hook) });
    expect(response.status).toBe(200);
    expect(await received(hook, 1)).toHaveLength(1);
  });
});

describe("webhook URLs are refused at submission unless public https", () => {
  it("refuses a webhook URL that is not http(s) with 400", async () => {
    const { secret } = await newKey();
    const response = await upscale(secret, await png(20, 20), { query: "webhook_url=ftp://example.com/hook" });
    expect(response.status).toBe(400);
  });

  it.each([
    ["plain http", "http://hooks.example/hook"],
    ["loopback", "https://127.0.0.1/internal/hook"],
    ["loopback written in decimal", "https://2130706433/hook"],
    ["cloud metadata", "https://169.254.169.254/latest/meta-data/"],
    ["a private network", "https://10.0.0.1/hook"],
    ["IPv6 loopback", "https://[::1]/hook"],
    ["IPv4-mapped IPv6 loopback", "https://[::ffff:127.0.0.1]/hook"],
    ["localhost", "https://localhost/hook"],
    ["an internal name", "https://metadata.google.internal/computeMetadata/v1/"],
    ["a single-label name", "https://intranet/hook"],
    ["a wildcard-DNS name", "https://127.0.0.1.nip.io/hook"],
    ["a port other than 443", "https://hooks.example:8443/hook"],
    ["credentials in the URL", "https://user:pass@hooks.example/hook"],
  ])("refuses %s with 400 webhook_url_not_allowed as problem+json", async (_, url) => {
    const { secret } = await newKey();
    const response = await upscale(secret, await png(20, 20), { query: webhookQuery(url) });
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(await response.json()).toMatchObject({ code: "webhook_url_not_allowed" });
  });

  it("refuses the runner's private API", async () => {
    const { secret } = await newKey();
    const response = await upscale(secret, await png(20, 20), { query: webhookQuery(`${runner}/v1/jobs?id=j_aaaaaaaaaaaaaaaaaaaa`) });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: "webhook_url_not_allowed" });
  });

  it("refuses this service's own origin, though its host is public", async () => {
    const { secret } = await newKey();
    const response = await upscale(secret, await png(20, 20), { query: webhookQuery(`${BASE}/admin/keys`) });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: "webhook_url_not_allowed" });
  });

  it("refuses before any job starts: no job, nothing posted", async () => {
    const { key, secret } = await newKey();
    const response = await upscale(secret, await png(20, 20), { query: webhookQuery("https://169.254.169.254/hook") });
    expect(response.status).toBe(400);
    expect(await jobCount(key.id)).toBe(0);
    expect(await fetched("https://169.254.169.254/")).toEqual([]);
  });
});
