import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { WebhookVerificationError, signWebhook, verifyWebhook } from "../../packages/client/src/index";

/** Standard Webhooks as the worker signs them: a fixed secret, clock and body, so every run is the same. */
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW_MS = 1_800_000_000_000;
const TIMESTAMP = NOW_MS / 1000;
const ID = "msg_abcdefghijklmnopqrst";
const BODY = JSON.stringify({ type: "upscale.succeeded", timestamp: "2027-01-15T08:00:00.000Z", data: { id: "j_abcdefghijklmnopqrst", status: "succeeded" } });

async function delivery(overrides: Record<string, string> = {}, body = BODY) {
  const headers = new Headers({ "webhook-id": ID, "webhook-timestamp": String(TIMESTAMP), "webhook-signature": await signWebhook(SECRET, ID, TIMESTAMP, body), ...overrides });
  return { headers, body };
}

async function reason(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(WebhookVerificationError);
  return (error as WebhookVerificationError).reason;
}

describe("verifyWebhook", () => {
  it("accepts what the worker signs, with the worker's own signing code, and returns the event", async () => {
    // Loaded by path, so that tsc does not check the worker's sources under Node's types.
    const signing = fileURLToPath(new URL("../../worker/src/security/webhook-signature.ts", import.meta.url));
    const worker = (await import(signing)) as { signWebhook(secret: string, id: string, timestamp: number, body: string): string };
    const signature = await worker.signWebhook(SECRET, ID, TIMESTAMP, BODY);
    expect(signature).toBe(await signWebhook(SECRET, ID, TIMESTAMP, BODY));
    const event = await verifyWebhook(SECRET, BODY, { "webhook-id": ID, "webhook-timestamp": String(TIMESTAMP), "webhook-signature": signature }, { now: NOW_MS });
    expect(event).toEqual({ type: "upscale.succeeded", timestamp: "2027-01-15T08:00:00.000Z", data: { id: "j_abcdefghijklmnopqrst", status: "succeeded" } });
  });

  it("takes the body as bytes and the headers as Fetch Headers or Node's header object", async () => {
    const { headers, body } = await delivery();
    await expect(verifyWebhook(SECRET, new TextEncoder().encode(body), headers, { now: NOW_MS })).resolves.toMatchObject({ type: "upscale.succeeded" });
    await expect(verifyWebhook(SECRET, body, Object.fromEntries(headers), { now: NOW_MS })).resolves.toMatchObject({ type: "upscale.succeeded" });
  });

  it("accepts a header listing several signatures when one of them matches (secret rotation)", async () => {
    const { headers, body } = await delivery();
    headers.set("webhook-signature", `v1,${"A".repeat(43)}= ${headers.get("webhook-signature")}`);
    await expect(verifyWebhook(SECRET, body, headers, { now: NOW_MS })).resolves.toBeTruthy();
  });

  it("refuses a body changed by one byte", async () => {
    const { headers } = await delivery();
    expect(await reason(verifyWebhook(SECRET, BODY.replace("succeeded", "succeedef"), headers, { now: NOW_MS }))).toBe("invalid_signature");
  });

  it("refuses another key's secret", async () => {
    const { headers, body } = await delivery();
    expect(await reason(verifyWebhook("whsec_b3RoZXIta2V5cy1zZWNyZXQtMTIzNDU2Nzg5MA==", body, headers, { now: NOW_MS }))).toBe("invalid_signature");
  });

  it("refuses a signature moved to another webhook-id or timestamp", async () => {
    const { headers, body } = await delivery();
    expect(await reason(verifyWebhook(SECRET, body, new Headers({ ...Object.fromEntries(headers), "webhook-id": "msg_other" }), { now: NOW_MS }))).toBe("invalid_signature");
    expect(await reason(verifyWebhook(SECRET, body, new Headers({ ...Object.fromEntries(headers), "webhook-timestamp": String(TIMESTAMP + 1) }), { now: NOW_MS }))).toBe("invalid_signature");
  });

  it("refuses deliveries more than five minutes old or ahead (replays), and takes a tolerance", async () => {
    const { headers, body } = await delivery();
    expect(await reason(verifyWebhook(SECRET, body, headers, { now: NOW_MS + 301_000 }))).toBe("timestamp_out_of_tolerance");
    expect(await reason(verifyWebhook(SECRET, body, headers, { now: NOW_MS - 301_000 }))).toBe("timestamp_out_of_tolerance");
    await expect(verifyWebhook(SECRET, body, headers, { now: NOW_MS + 301_000, toleranceS: 600 })).resolves.toBeTruthy();
  });

  it("refuses missing headers, a timestamp that is not Unix seconds, other signature versions and a body that is not JSON", async () => {
    const { headers, body } = await delivery();
    expect(await reason(verifyWebhook(SECRET, body, { "webhook-id": ID }, { now: NOW_MS }))).toBe("missing_headers");
    expect(await reason(verifyWebhook(SECRET, body, new Headers({ ...Object.fromEntries(headers), "webhook-timestamp": "soon" }), { now: NOW_MS }))).toBe("invalid_timestamp");
    const v2 = headers.get("webhook-signature")?.replace(/^v1,/, "v2,") ?? "";
    expect(await reason(verifyWebhook(SECRET, body, new Headers({ ...Object.fromEntries(headers), "webhook-signature": v2 }), { now: NOW_MS }))).toBe("invalid_signature");
    const notJson = await delivery({}, "not json");
    expect(await reason(verifyWebhook(SECRET, notJson.body, notJson.headers, { now: NOW_MS }))).toBe("invalid_payload");
  });
});
