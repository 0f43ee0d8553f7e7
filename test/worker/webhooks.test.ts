import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { fromBase64, hmacSha256, toBase64 } from "../../worker/src/crypto";
import { deliverDue } from "../../worker/src/webhooks/deliver";
import { newKey, upscale } from "./helpers";
import { png } from "./images";

const [runner = ""] = env.RUNNER_URLS.split(",");
let seed = 80_000;

interface Received {
  headers: Record<string, string>;
  body: string;
}

async function inbox(name: string): Promise<Received[]> {
  return (await fetch(`${runner}/__webhooks/${name}`)).json();
}

/** Waits (a bounded number of polls) until the inbox holds `count` deliveries. */
async function received(name: string, count: number): Promise<Received[]> {
  for (let i = 0; i < 200; i++) {
    const list = await inbox(name);
    if (list.length >= count) return list;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return inbox(name);
}

/** The receiver's side of Standard Webhooks. */
async function verify(secret: string, delivery: Received): Promise<boolean> {
  const { "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": signature } = delivery.headers;
  const expected = toBase64(await hmacSha256(fromBase64(secret.replace(/^whsec_/, "")), `${id}.${timestamp}.${delivery.body}`));
  return signature === `v1,${expected}`;
}

describe("webhooks", () => {
  it("posts a signed upscale.succeeded event when the job ends", async () => {
    const { secret, webhookSecret } = await newKey();
    const name = "succeeded";
    const response = await upscale(secret, await png(20, 20, { seed: seed++ }), { query: `webhook_url=${runner}/__webhooks/${name}` });
    const job = await response.json<{ id: string }>();
    const [delivery] = await received(name, 1);
    if (!delivery) throw new Error("no delivery");
    expect(JSON.parse(delivery.body)).toMatchObject({ type: "upscale.succeeded", data: { id: job.id, status: "succeeded" } });
    expect(delivery.headers["webhook-id"]).toMatch(/^msg_/);
    expect(await verify(webhookSecret, delivery)).toBe(true);
  });

  it("posts upscale.failed with the error when the job fails", async () => {
    const { secret } = await newKey();
    const name = "failed";
    await upscale(secret, await png(20, 20, { seed: seed++, text: { "hvar-test": "fail" } }), { query: `webhook_url=${runner}/__webhooks/${name}` });
    const [delivery] = await received(name, 1);
    expect(JSON.parse(delivery?.body ?? "{}")).toMatchObject({ type: "upscale.failed", data: { status: "failed", error: { code: "inference_failed" } } });
  });

  it("retries a failed delivery later with the same webhook-id", async () => {
    const { secret, webhookSecret } = await newKey();
    const name = "retried";
    await upscale(secret, await png(20, 20, { seed: seed++ }), { query: `webhook_url=${runner}/__webhooks/${name}?fail=1` });
    await received(name, 1);
    await deliverDue(env.DB, Date.now() + 10 * 60_000);
    const [first, second] = await received(name, 2);
    expect(second?.headers["webhook-id"]).toBe(first?.headers["webhook-id"]);
    expect(await verify(webhookSecret, second ?? { headers: {}, body: "" })).toBe(true);
  });

  it("does not deliver again once delivered", async () => {
    const { secret } = await newKey();
    const name = "once";
    await upscale(secret, await png(20, 20, { seed: seed++ }), { query: `webhook_url=${runner}/__webhooks/${name}` });
    await received(name, 1);
    await deliverDue(env.DB, Date.now() + 24 * 3600_000);
    expect(await inbox(name)).toHaveLength(1);
  });

  it("refuses a webhook URL that is not http(s) with 400", async () => {
    const { secret } = await newKey();
    const response = await upscale(secret, await png(20, 20, { seed: seed++ }), { query: "webhook_url=ftp://example.com/hook" });
    expect(response.status).toBe(400);
  });
});
