import { createHmac, timingSafeEqual } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { type IncomingHttpHeaders, type Server, createServer } from "node:http";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { expect, inject } from "vitest";
import { listenOnLoopback } from "../fixtures/round-robin-proxy";

/** Helpers for the e2e tests: the stack of setup.ts, seen only through its public HTTP APIs. */
export const stack = inject("stack");

const issued = new Map<string, number>();

/**
 * A name that no other image of the run has: the test file's name (unique in its folder) and how
 * many images that file asked for before, in fixed width. The files share one stack, whose result
 * cache is shared across keys: two tests that sent equal images would depend on their order.
 */
function uniqueName(): string {
  const file = expect.getState().testPath?.split("/").pop() ?? "";
  const count = (issued.get(file) ?? 0) + 1;
  issued.set(file, count);
  return `${file}-${String(count).padStart(6, "0")}`;
}

/**
 * One of the demo's example photos (small, redistributable JPEGs): `chelsea` 256x170, `astronaut`
 * 256x256, ... Its pixels are the photo's, and a JPEG comment (COM segment) carries a `uniqueName()`,
 * so no two calls return the same bytes; a test that needs one image twice keeps its bytes.
 */
export async function example(name: "chelsea" | "coffee" | "astronaut" | "rocket"): Promise<Buffer> {
  const photo = await readFile(fileURLToPath(new URL(`../../worker/public/demo/examples/${name}.jpg`, import.meta.url)));
  const text = Buffer.from(uniqueName(), "utf8");
  const marker = Buffer.alloc(4);
  marker.writeUInt16BE(0xfffe, 0); // COM, right after SOI
  marker.writeUInt16BE(text.length + 2, 2);
  return Buffer.concat([photo.subarray(0, 2), marker, text, photo.subarray(2)]);
}

/**
 * A PNG of noise (incompressible, so every tile is real work) from a fixed-seed generator, whose
 * first pixels spell out a `uniqueName()`: no two calls return the same image.
 */
export async function noisePng(width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  let state = 1;
  for (let i = 0; i < raw.length; i++) {
    state = (state * 1664525 + 1013904223) >>> 0;
    raw[i] = state >>> 24;
  }
  const tag = Buffer.from(`${uniqueName()}\0`, "utf8");
  if (tag.length > raw.length) throw new Error(`a ${width}x${height} image is too small for its tag`);
  tag.copy(raw);
  return sharp(raw, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
}

export interface Output {
  scale: number;
  url: string;
  contentType: string;
  width: number;
  height: number;
  bytes: number;
}

export interface Job {
  id: string;
  status: "queued" | "running" | "succeeded" | "failed";
  model: { id: string; version: string } | null;
  input: { width: number; height: number; type: string; megapixels: number };
  outputs?: Output[];
  urlsExpireAt?: string;
  usage: { inputMp: number; cacheHit: boolean; billable: boolean; billedMp: number };
  error?: { code: string; title: string };
}

export interface Usage {
  keyId: string;
  quota: { period: string; monthlyQuotaMp: number; settledMp: number; reservedMp: number };
  buckets: { period: string; billableMp: number; outputMp: number; jobs: number; cacheHits: number; runnerMs: number }[];
}

export function api(path: string, key: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${key}`);
  return fetch(`${stack.workerUrl}${path}`, { ...init, headers });
}

/** A new API key from the admin API, with the secrets shown once. */
export async function newKey(settings: Record<string, unknown> = {}): Promise<{ key: { id: string }; secret: string; webhookSecret: string }> {
  const response = await fetch(`${stack.workerUrl}/admin/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${stack.adminSecret}`, "content-type": "application/json" },
    body: JSON.stringify({ owner: "e2e", monthlyQuotaMp: 1000, rateLimitPerMin: 1000, ...settings }),
  });
  if (response.status !== 201) throw new Error(`creating a key: ${response.status} ${await response.text()}`);
  return (await response.json()) as { key: { id: string }; secret: string; webhookSecret: string };
}

/** POST /v1/upscales with the image as the raw body. */
export function upscale(key: string, image: Uint8Array, query: string, headers: Record<string, string> = {}): Promise<Response> {
  return api(`/v1/upscales?${query}`, key, { method: "POST", body: image, headers: { "content-type": "application/octet-stream", ...headers } });
}

export async function readJob(key: string, id: string): Promise<Job> {
  const response = await api(`/v1/upscales/${id}`, key);
  if (response.status !== 200) throw new Error(`GET /v1/upscales/${id}: ${response.status} ${await response.text()}`);
  return (await response.json()) as Job;
}

/** Polls the job (as a client would, every 250 ms) until it ends. */
export async function untilDone(key: string, id: string, timeoutMs = 90_000): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await readJob(key, id);
    if (job.status === "succeeded" || job.status === "failed") return job;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.status} after ${timeoutMs} ms`);
    await sleep(250);
  }
}

export async function usageOf(key: string): Promise<Usage> {
  const response = await api("/v1/usage", key);
  if (response.status !== 200) throw new Error(`GET /v1/usage: ${response.status}`);
  return (await response.json()) as Usage;
}

/** Downloads a signed URL and decodes it with a real decoder (libvips, through sharp). */
export async function download(url: string): Promise<{ response: Response; format: string | undefined; width: number | undefined; height: number | undefined }> {
  const response = await fetch(url);
  const bytes = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200) return { response, format: undefined, width: undefined, height: undefined };
  const meta = await sharp(bytes).metadata();
  return { response, format: meta.format, width: meta.width, height: meta.height };
}

/** Runs the worker's scheduled handler once (what the cron trigger does every minute in production). */
export async function triggerCron(): Promise<void> {
  const response = await fetch(`${stack.workerUrl}/cdn-cgi/local/scheduled`);
  await response.body?.cancel();
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A local HTTP server that receives webhooks (answers 204) and hands them out in order of arrival. */
export async function webhookReceiver(): Promise<{ url: string; next(timeoutMs?: number): Promise<Delivery>; close(): Promise<void> }> {
  const received: Delivery[] = [];
  const waiting: ((delivery: Delivery) => void)[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      response.writeHead(204).end();
      const delivery = { headers: request.headers, body: Buffer.concat(chunks).toString("utf8") };
      const waiter = waiting.shift();
      if (waiter) waiter(delivery);
      else received.push(delivery);
    });
  });
  // Webhook URLs must be public https unless their origin is exempt (ALLOW_INSECURE_ORIGINS):
  // the stack exempts this one loopback origin, so one receiver at a time (the files run in turn).
  const close = await serveOrigin(stack.webhookOriginRoute, server);
  return {
    url: `${stack.webhookOrigin}/hooks/hvar`,
    next(timeoutMs = 60_000) {
      const ready = received.shift();
      if (ready) return Promise.resolve(ready);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no webhook arrived")), timeoutMs);
        waiting.push((delivery) => {
          clearTimeout(timer);
          resolve(delivery);
        });
      });
    },
    close,
  };
}

/**
 * Standard Webhooks verification, as a receiver implements it: v1 signature = base64 HMAC-SHA256
 * over "<webhook-id>.<webhook-timestamp>.<body>" with the base64-decoded part of the whsec_ secret.
 */
export function verifyWebhook(secret: string, delivery: Delivery, toleranceS = 300): boolean {
  const id = String(delivery.headers["webhook-id"] ?? "");
  const timestamp = String(delivery.headers["webhook-timestamp"] ?? "");
  const signatures = String(delivery.headers["webhook-signature"] ?? "").split(" ");
  if (!id || !/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > toleranceS) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.${delivery.body}`).digest();
  return signatures.some((entry) => {
    const [version, value] = entry.split(",");
    if (version !== "v1" || !value) return false;
    const given = Buffer.from(value, "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/** Jobs the runner (by default the stack's first) is working on now, from its /metrics (on their own port). */
export async function runnerJobsRunning(metricsUrl = stack.metricsUrl): Promise<number> {
  try {
    const text = await (await fetch(`${metricsUrl}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith('hvar_runner_jobs_in_flight{status="running"}'));
    return line ? Number(line.split(" ").pop()) : 0;
  } catch {
    return 0;
  }
}

/**
 * A customer's image origin: serves `files` (path to bytes) on the loopback origin the stack exempts
 * for sources (stack.cdnOrigin, ALLOW_INSECURE_ORIGINS); one at a time, as the files run in turn.
 */
export async function imageOrigin(files: Record<string, Buffer>): Promise<{ url(path: string): string; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    const body = files[request.url ?? ""];
    if (body) response.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(body.length) }).end(body);
    else response.writeHead(404).end();
  });
  const close = await serveOrigin(stack.cdnOriginRoute, server);
  return { url: (path) => `${stack.cdnOrigin}${path}`, close };
}

/**
 * Serves one of the stack's fixed loopback origins with `server` until the returned close: the
 * server listens on a port of its own, and the origin (setup.ts's routed origin) relays to it.
 * One server per origin at a time, as the files run in turn.
 */
export async function serveOrigin(routeFile: string, server: Server): Promise<() => Promise<void>> {
  const listening = await listenOnLoopback(server);
  await writeFile(routeFile, listening.url);
  return async () => {
    await rm(routeFile, { force: true });
    await listening.close();
  };
}

/** The JSON lines `service` (runner, worker; runner1, runner2, ... for replicas) wrote to the stack's log so far. */
export async function logLines(service: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(stack.logFile, "utf8");
  return text.split("\n").flatMap((line) => {
    const match = /^(\w+)\s*\| (\{.*\})\s*$/.exec(line);
    if (match?.[1] !== service) return [];
    try {
      return [JSON.parse(match[2] ?? "") as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}
