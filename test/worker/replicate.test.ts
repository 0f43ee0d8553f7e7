import { SELF, env } from "cloudflare:test";
import Replicate from "replicate";
import { describe, expect, it } from "vitest";
import schema from "../../infra/replicate/schema.json";
import { advance } from "../../worker/src/jobs/lifecycle";
import { getJob } from "../../worker/src/storage/jobs";
import { ReplicateBackend } from "../../worker/src/dispatch/replicate";
import { fromBase64, hmacSha256, toBase64 } from "../../worker/src/security/crypto";
import { verifyReplicateWebhook } from "../../worker/src/security/webhook-signature";
import { BASE, meterOf, newKey, upscale, withInput } from "./helpers";
import { png } from "./images";
import { idDigits } from "./unique";

const WEBHOOK_SECRET = env.REPLICATE_WEBHOOK_SECRET;
const options = { scales: [2 as const, 4 as const], format: "png" as const, quality: null, temperature: 0.5, cleanup: 1 };
let n = 0;
const jobId = () => `j_repl${idDigits(n++, 16)}`;

interface Prediction {
  id: string;
  status: string;
  model: string;
  version: string;
  input: Record<string, unknown>;
  output?: Record<string, string | null>;
  error?: string;
  metrics?: { predict_time: number };
}

interface InputSchema {
  type?: string;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  pattern?: string;
  allOf?: { $ref: string }[];
}

/**
 * What is wrong with a prediction's input by the model's schema (infra/replicate/schema.json, the
 * predictor's own, as Replicate validates inputs against the version's schema), or null. Stricter than
 * Replicate on one point: an input the model does not declare is refused too, so a renamed one shows here.
 */
function invalidInput(input: Record<string, unknown>): string | null {
  const { properties, required } = schema.Input as { properties: Record<string, InputSchema>; required: string[] };
  for (const name of required) if (!(name in input)) return `${name} is required`;
  for (const [name, value] of Object.entries(input)) {
    const declared = properties[name];
    if (!declared) return `${name} is not an input of the model`;
    const ref = declared.allOf?.[0]?.$ref.split("/").pop();
    const rule: InputSchema = { ...declared, ...(ref ? (schema as Record<string, InputSchema>)[ref] : {}) };
    const typed = { string: typeof value === "string", integer: Number.isInteger(value), number: typeof value === "number" }[rule.type ?? ""];
    if (!typed) return `${name} is not of type ${rule.type}`;
    if (rule.enum && !rule.enum.includes(value)) return `${name} is not one of ${rule.enum.join(", ")}`;
    if (rule.minimum !== undefined && (value as number) < rule.minimum) return `${name} is under ${rule.minimum}`;
    if (rule.maximum !== undefined && (value as number) > rule.maximum) return `${name} is over ${rule.maximum}`;
    if (rule.pattern && !new RegExp(rule.pattern).test(value as string)) return `${name} does not match ${rule.pattern}`;
  }
  return null;
}

/** A succeeded prediction's output as Cog writes the model's Output object: every field, null where no file was made. */
const outputOf = (files: Partial<Record<string, string>>) => Object.fromEntries(Object.keys(schema.Output.properties).map((name) => [name, files[name] ?? null]));

/** Replicate's HTTP API as far as this backend uses it, plus replicate.delivery for outputs. */
function fakeReplicate(outputs: Record<string, Uint8Array> = {}) {
  const created: { version: string; input: Record<string, unknown>; webhook?: string }[] = [];
  const predictions = new Map<string, Prediction>();
  const fake = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (url.hostname === "replicate.delivery") {
      // A download that never ends, unless its caller gives up on it.
      if (url.pathname === "/stalled") return new Promise((_, reject) => request.signal.addEventListener("abort", () => reject(request.signal.reason)));
      const body = outputs[url.pathname.slice(1)];
      return body ? new Response(body) : new Response("gone", { status: 404 });
    }
    if (request.method === "POST" && url.pathname === "/v1/predictions") {
      const body = await request.json<(typeof created)[number]>();
      if (body.version === "broken") return Response.json({ detail: "invalid version" }, { status: 422 });
      const invalid = invalidInput(body.input);
      if (invalid) return Response.json({ detail: `input: ${invalid}` }, { status: 422 });
      created.push(body);
      const prediction = { id: `p${created.length}`, status: "starting", model: "hvar/hvar", version: body.version, input: body.input };
      predictions.set(prediction.id, prediction);
      return Response.json(prediction, { status: 201 });
    }
    const canceling = request.method === "POST" ? /^\/v1\/predictions\/(\w+)\/cancel$/.exec(url.pathname)?.[1] : undefined;
    const canceled = canceling && predictions.get(canceling);
    if (canceled) {
      canceled.status = "canceled";
      return Response.json(canceled);
    }
    const id = /^\/v1\/predictions\/(\w+)$/.exec(url.pathname)?.[1];
    const prediction = id && predictions.get(id);
    return prediction ? Response.json(prediction) : Response.json({ detail: "not found" }, { status: 404 });
  };
  return { fetch: fake as typeof fetch, created, predictions };
}

function backend(fake: ReturnType<typeof fakeReplicate>, version = "v123") {
  const client = new Replicate({ auth: "r8_test", fetch: fake.fetch });
  return new ReplicateBackend({ client, version, bucket: env.RESULTS, timeoutMs: 1000, webhookUrl: `${BASE}/v1/replicate/webhook`, fetch: fake.fetch });
}

describe("the Replicate backend", () => {
  it("creates a prediction with the image as a data URI, the options and the webhook", async () => {
    const fake = fakeReplicate();
    const image = await png(8, 8);
    const { runner } = await backend(fake).submit(await withInput({ id: jobId(), image, contentType: "image/png", width: 8, height: 8, options, requestId: null }));
    expect(runner).toBe("p1");
    expect(fake.created[0]).toMatchObject({
      version: "v123",
      input: { image: `data:image/png;base64,${toBase64(image)}`, scales: "2,4", format: "png", quality: 85, temperature: 0.5, size: "8x8" },
      webhook: `${BASE}/v1/replicate/webhook`,
    });
  });

  it("sends an input that the model's schema allows, every input given (the fake refuses any other, as Replicate does)", async () => {
    const image = `data:image/png;base64,${toBase64(await png(8, 8))}`;
    const valid = { image, scales: "2,4", format: "webp", quality: 80, temperature: 0, size: "8x8" };
    expect(invalidInput(valid)).toBeNull();
    expect(invalidInput({ ...valid, quality: 0 })).toBe("quality is under 1");
    expect(invalidInput({ ...valid, format: "gif" })).toBe("format is not one of png, webp, avif, jpeg");
    expect(invalidInput({ ...valid, scales: [2, 4] })).toBe("scales is not of type string");
    expect(invalidInput({ ...valid, size: "8" })).toBe("size does not match ^([1-9][0-9]{0,5}x[1-9][0-9]{0,5})?$");
    expect(invalidInput({ ...valid, scale: "2" })).toBe("scale is not an input of the model");
    const fake = fakeReplicate();
    await backend(fake).submit(await withInput({ id: jobId(), image: await png(8, 8), contentType: "image/png", width: 8, height: 8, options: { ...options, format: "webp", quality: 80 }, requestId: null }));
    expect(Object.keys(fake.created[0]?.input ?? {}).sort()).toEqual(Object.keys(schema.Input.properties).sort());
  });

  it("turns a refused prediction into a retryable replicate_unavailable", async () => {
    const submit = backend(fakeReplicate(), "broken").submit(await withInput({ id: jobId(), image: await png(8, 8), contentType: "image/png", width: 8, height: 8, options, requestId: null }));
    await expect(submit).rejects.toMatchObject({ code: "replicate_unavailable", retryable: true });
  });

  it.each([
    ["starting", "queued"],
    ["processing", "running"],
  ])("reports a %s prediction as %s", async (status, expected) => {
    const fake = fakeReplicate();
    const jobs = backend(fake);
    const { runner } = await jobs.submit(await withInput({ id: jobId(), image: await png(8, 8), contentType: "image/png", width: 8, height: 8, options, requestId: null }));
    fake.predictions.set(runner, { ...(fake.predictions.get(runner) as Prediction), status });
    expect(await jobs.poll("j_x", runner)).toEqual({ status: expected });
  });

  it("copies the outputs into R2, with sizes read from the images", async () => {
    const fake = fakeReplicate({ "o/x2.png": await png(16, 16), "o/x4.png": await png(32, 32) });
    const jobs = backend(fake);
    const id = jobId();
    const { runner } = await jobs.submit(await withInput({ id, image: await png(8, 8), contentType: "image/png", width: 8, height: 8, options, requestId: null }));
    const output = outputOf({ x2: "https://replicate.delivery/o/x2.png", x4: "https://replicate.delivery/o/x4.png" });
    fake.predictions.set(runner, { ...(fake.predictions.get(runner) as Prediction), status: "succeeded", output, metrics: { predict_time: 1.5 } });
    const state = await jobs.poll(id, runner);
    expect(state).toMatchObject({
      status: "succeeded",
      runnerMs: 1500,
      model: { id: "hvar/hvar", version: "v123" },
      outputs: [
        { scale: 2, key: `results/${id}/x2.png`, width: 16, height: 16 },
        { scale: 4, key: `results/${id}/x4.png`, width: 32, height: 32 },
      ],
    });
    expect((await env.RESULTS.head(`results/${id}/x4.png`))?.customMetadata?.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("cancels the prediction, which then reports canceled", async () => {
    const fake = fakeReplicate();
    const jobs = backend(fake);
    const { runner } = await jobs.submit(await withInput({ id: jobId(), image: await png(8, 8), contentType: "image/png", width: 8, height: 8, options, requestId: null }));
    await jobs.cancel("j_x", runner);
    expect(fake.predictions.get(runner)?.status).toBe("canceled");
    expect(await jobs.poll("j_x", runner)).toEqual({ status: "canceled" });
  });

  it("has nothing to cancel after a failed submit (no prediction)", async () => {
    const fake = fakeReplicate();
    await backend(fake).cancel("j_x", null);
    expect(fake.created).toEqual([]);
  });

  it("reports a failed prediction with its error", async () => {
    const fake = fakeReplicate();
    const jobs = backend(fake);
    const { runner } = await jobs.submit(await withInput({ id: jobId(), image: await png(8, 8), contentType: "image/png", width: 8, height: 8, options, requestId: null }));
    fake.predictions.set(runner, { ...(fake.predictions.get(runner) as Prediction), status: "failed", error: "CUDA out of memory" });
    expect(await jobs.poll("j_x", runner)).toEqual({ status: "failed", error: { code: "replicate_failed", title: "CUDA out of memory" } });
  });
});

describe("a succeeded prediction whose outputs cannot be used", () => {
  /** A job of a new key for x2 only, reserved and running, whose prediction succeeded with `output`. */
  async function predictionWith(fake: ReturnType<typeof fakeReplicate>, output: unknown) {
    const { key, secret } = await newKey();
    const response = await upscale(secret, await png(30, 30, { text: { "hvar-test": "hang" } }), { headers: { prefer: "respond-async" } });
    const job = await getJob(env.DB, (await response.json<{ id: string }>()).id);
    if (!job) throw new Error("no job");
    const { runner } = await backend(fake).submit(await withInput({ id: job.id, image: await png(8, 8), contentType: "image/png", width: 8, height: 8, options: { ...options, scales: [2] }, requestId: null }));
    fake.predictions.set(runner, { ...(fake.predictions.get(runner) as Prediction), status: "succeeded", output: output as Prediction["output"] });
    return { key, job: { ...job, runner } };
  }

  it("fails the job as the prediction's fault, not the client's image, and refunds it", async () => {
    const fake = fakeReplicate({ "o/x2.png": new TextEncoder().encode("<html>not an image</html>") });
    const { key, job } = await predictionWith(fake, outputOf({ x2: "https://replicate.delivery/o/x2.png" }));
    const ended = await advance({ env, dispatcher: backend(fake) }, job);
    expect(ended).toMatchObject({ status: "failed", error: { code: "replicate_bad_output", kind: "upstream", title: expect.stringContaining("x2 is not an image") } });
    expect(await meterOf(key.id).usage()).toMatchObject({ reservedMp: 0, settledMp: 0 });
  });

  it("fails the job when a scale that was asked for has no output", async () => {
    const fake = fakeReplicate();
    const { job } = await predictionWith(fake, outputOf({ x4: "https://replicate.delivery/o/x4.png" }));
    const ended = await advance({ env, dispatcher: backend(fake) }, job);
    expect(ended).toMatchObject({ status: "failed", error: { code: "replicate_bad_output", title: expect.stringContaining("no x2") } });
  });

  it.each([
    ["a list of URLs", ["https://replicate.delivery/o/x2.png"]],
    ["an object without every scale's field", { x2: "https://replicate.delivery/o/x2.png" }],
  ])("fails the job when the output is %s, not the model's Output object", async (_, output) => {
    const fake = fakeReplicate();
    const { job } = await predictionWith(fake, output);
    const ended = await advance({ env, dispatcher: backend(fake) }, job);
    expect(ended).toMatchObject({ status: "failed", error: { code: "replicate_bad_output", title: expect.stringContaining("x1, x2 and x4") } });
  });

  it("leaves the job running when an output's download is too slow, to be polled again", async () => {
    const fake = fakeReplicate();
    const { key, job } = await predictionWith(fake, outputOf({ x2: "https://replicate.delivery/stalled" }));
    const ended = await advance({ env, dispatcher: backend(fake) }, job);
    expect(ended).toMatchObject({ id: job.id, status: "running" });
    expect(await meterOf(key.id).usage()).toMatchObject({ reservedMp: 0.0009 });
  });
});

async function signed(body: string, timestamp = Math.floor(Date.now() / 1000), secret = WEBHOOK_SECRET): Promise<Headers> {
  const id = "msg_test";
  const signature = toBase64(await hmacSha256(fromBase64(secret.replace(/^whsec_/, "")), `${id}.${timestamp}.${body}`));
  return new Headers({ "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": `v1,${signature}`, "content-type": "application/json" });
}

describe("Replicate webhooks", () => {
  const body = JSON.stringify({ id: "p-unknown", status: "succeeded" });

  it("are accepted with a valid, recent signature", async () => {
    expect(await verifyReplicateWebhook(await signed(body), body, WEBHOOK_SECRET)).toBe(true);
  });

  it("are refused when the body was altered", async () => {
    expect(await verifyReplicateWebhook(await signed(body), body.replace("succeeded", "failed"), WEBHOOK_SECRET)).toBe(false);
  });

  it("are refused outside the five-minute window", async () => {
    const stale = await signed(body, Math.floor(Date.now() / 1000) - 301);
    expect(await verifyReplicateWebhook(stale, body, WEBHOOK_SECRET)).toBe(false);
  });

  it("are accepted when one of several signatures matches (secret rotation)", async () => {
    const headers = await signed(body);
    headers.set("webhook-signature", `v1,AAAA ${headers.get("webhook-signature")}`);
    expect(await verifyReplicateWebhook(headers, body, WEBHOOK_SECRET)).toBe(true);
  });

  it("answer 401 at the endpoint when the signature is wrong", async () => {
    const headers = await signed(body, undefined, "whsec_b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA==");
    const response = await SELF.fetch(`${BASE}/v1/replicate/webhook`, { method: "POST", headers, body });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ code: "invalid_webhook_signature" });
  });

  it("answer 204 at the endpoint for a genuine webhook", async () => {
    const response = await SELF.fetch(`${BASE}/v1/replicate/webhook`, { method: "POST", headers: await signed(body), body });
    expect(response.status).toBe(204);
  });
});
