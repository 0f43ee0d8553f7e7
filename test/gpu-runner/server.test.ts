import { createHash } from "node:crypto";
import { type Logger, pino } from "pino";
import sharp from "sharp";
import { describe, expect, it, vi } from "vitest";
import { type Manifest, type ModelEntry, manifestLimits } from "../../gpu-runner/src/model/manifest";
import type { TileModel } from "../../gpu-runner/src/model/types";
import { Scheduler } from "../../gpu-runner/src/scheduler/scheduler";
import { createApp } from "../../gpu-runner/src/server/app";
import { signRequest } from "../../gpu-runner/src/server/auth";
import { MAX_OUTPUT_PIXELS, type RunnerJob as Job, runnerModelSchema } from "@hvar/contract";
import { JobService } from "../../gpu-runner/src/server/jobs";
import { rgbBuffers } from "../../gpu-runner/src/tiling/rgb-buffers";
import { sumChunks } from "../../gpu-runner/src/tiling/sum-chunks";
import { taskMemoryBytes } from "../../gpu-runner/src/tiling/task";
import { metricsApp, RunnerMetrics } from "../../gpu-runner/src/server/metrics";
import { LocalStore } from "../../gpu-runner/src/storage/local";
import type { ObjectStore } from "../../gpu-runner/src/storage/store";
import { exifTiff, gif, jpegWithExif } from "../fixtures/crafted-images";
import { nearestModel, rawImage, silentLog, tempDir } from "./helpers";

const SECRET = "test-secret-0123456789abcdef";
const manifest: Manifest = { id: "m", version: "1", tile: 16, scales: [1, 2, 4], tokens: 4, opset: 18, precision: "fp32", sha256: "0".repeat(64), config: {}, evaluation: {} };
const entry: ModelEntry = { onnxPath: "/models/m/model.onnx", manifest };

interface RunnerOptions {
  manifest?: Manifest;
  model?: TileModel;
  store?: ObjectStore;
  maxQueuedTiles?: number;
  memory?: { jobBytes: number; totalBytes: number };
  draining?: () => boolean;
  log?: Logger;
  /** This runner among replicas sharing `store`: "replica-a" by default; runners made with one id are one replica's restarts. */
  replica?: string;
  /** The runner's clock (Unix ms), by which it writes and judges heartbeats. */
  now?: () => number;
}

/** Heartbeats this often in tests; a heartbeat older than STALE_MS is a dead owner's. */
const HEARTBEAT_MS = 20;
const STALE_MS = 10_000;

async function runner(options: RunnerOptions = {}) {
  const store = options.store ?? new LocalStore(await tempDir("hvar-runner-"));
  const metrics: RunnerMetrics = new RunnerMetrics({ queuedTiles: () => scheduler.queuedTiles, jobsByStatus: () => jobs.countByStatus() });
  const scheduler: Scheduler = new Scheduler(options.model ?? nearestModel(16), { batchSize: 4, memoryBudgetBytes: 1 << 30, maxQueuedTiles: options.maxQueuedTiles ?? 1000 }, metrics);
  const jobs: JobService = new JobService({
    manifest: options.manifest ?? manifest,
    scheduler,
    store,
    metrics,
    log: silentLog,
    decode: { maxPixels: 100_000 },
    overlap: 4,
    memory: options.memory ?? { jobBytes: 1 << 30, totalBytes: 1 << 30 },
    replica: { id: options.replica ?? "replica-a", heartbeatMs: HEARTBEAT_MS, staleMs: STALE_MS },
    ...(options.now ? { now: options.now } : {}),
  });
  const app = createApp({ discovery: { models: [entry], rejected: [] }, jobs, secret: SECRET, log: options.log ?? silentLog, maxBodyBytes: 1_000_000, ...(options.draining ? { draining: options.draining } : {}) });
  const scrape = () => metricsApp(metrics).request("/metrics");
  const request = (method: string, path: string, body: Uint8Array = new Uint8Array(), headers: Record<string, string> = {}) =>
    app.request(path, { method, body: method === "GET" ? null : body, headers: { ...signRequest(SECRET, method, path, body), ...headers } });
  return { app, jobs, store, request, scrape };
}

const photo = () => rawImage(40, 30, (x, y) => [x * 6, y * 8, 100]).png().toBuffer();

async function createAndFinish(r: Awaited<ReturnType<typeof runner>>, id: string, query = "scales=1,2,4&format=png", image?: Buffer) {
  const response = await r.request("POST", `/v1/jobs?id=${id}&${query}`, image ?? (await photo()));
  expect(response.status).toBe(202);
  await r.jobs.drain();
  return (await (await r.request("GET", `/v1/jobs/${id}`)).json()) as Job;
}

describe("runner health", () => {
  it("is alive even without a model", async () => {
    const app = createApp({ discovery: { models: [], rejected: [] }, secret: SECRET, log: silentLog, maxBodyBytes: 1 });
    expect((await app.request("/healthz")).status).toBe(200);
  });

  it("is not ready until a model is loaded, and says why", async () => {
    const rejected = [{ dir: "/models/x", reason: "model.onnx is missing" }];
    const response = await createApp({ discovery: { models: [], rejected }, secret: SECRET, log: silentLog, maxBodyBytes: 1 }).request("/readyz");
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ status: "no_model", rejected });
  });

  it("is ready with a loaded model and names it", async () => {
    const response = await (await runner()).app.request("/readyz");
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: "ready", models: [{ id: "m", version: "1" }] });
  });

  it("answers job routes with 503 no_model when no model is loaded", async () => {
    const app = createApp({ discovery: { models: [], rejected: [] }, secret: SECRET, log: silentLog, maxBodyBytes: 1000 });
    const response = await app.request("/v1/jobs/x", { headers: signRequest(SECRET, "GET", "/v1/jobs/x", new Uint8Array()) });
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ code: "no_model" });
  });
});

describe("GET /v1/model", () => {
  it("names the model and says what the runner accepts: the manifest's scales and pixel limits within the operator's, and the body limit", async () => {
    const response = await (await runner()).request("GET", "/v1/model");
    expect(response.status).toBe(200);
    const answer = runnerModelSchema.parse(await response.json());
    expect(answer).toEqual({
      model: { id: "m", version: "1" },
      // decode.maxPixels (100_000) is lower than the manifest's default (MAX_INPUT_PIXELS).
      limits: { maxInputPixels: 100_000, maxOutputPixels: MAX_OUTPUT_PIXELS, maxBodyBytes: 1_000_000, scales: [1, 2, 4], sampling: true, cleanup: false },
    });
  });

  it("takes the manifest's own limits where they are lower than the operator's", () => {
    expect(manifestLimits({ ...manifest, maxInputPixels: 50_000, maxOutputPixels: 800_000 }, 100_000)).toEqual({ maxInputPixels: 50_000, maxOutputPixels: 800_000, scales: [1, 2, 4], sampling: true, cleanup: false });
  });

  it("says a deterministic model (tokens 0) does not sample, so that the worker can drop the temperature", async () => {
    const response = await (await runner({ manifest: { ...manifest, tokens: 0 } })).request("GET", "/v1/model");
    expect(runnerModelSchema.parse(await response.json()).limits.sampling).toBe(false);
  });

  it("says whether the model takes a clean-up strength (manifest cleanup), so that the worker can drop one it does not", async () => {
    const limits = async (m: Manifest) => runnerModelSchema.parse(await (await (await runner({ manifest: m })).request("GET", "/v1/model")).json()).limits.cleanup;
    expect(await limits({ ...manifest, cleanup: true })).toBe(true);
    expect(await limits(manifest)).toBe(false);
  });

  it("is signed like every /v1/ route", async () => {
    expect((await (await runner()).app.request("/v1/model")).status).toBe(401);
  });

  it("is what the runner enforces: an input over the manifest's maxOutputPixels / s² at scale s is refused (422 image_too_large)", async () => {
    // 40x30 is 1200 pixels: within 20_000 / 4² = 1250 at x4, over 5_000 / 4² = 312.
    const roomy = await runner({ manifest: { ...manifest, maxOutputPixels: 20_000 } });
    expect((await roomy.request("POST", "/v1/jobs?id=fits&scales=4&format=png", await photo())).status).toBe(202);
    const tight = await runner({ manifest: { ...manifest, maxOutputPixels: 5_000 } });
    const refused = await tight.request("POST", "/v1/jobs?id=too-large&scales=4&format=png", await photo());
    expect(refused.status).toBe(422);
    expect(await refused.json()).toMatchObject({ code: "image_too_large" });
    expect((await tight.request("POST", "/v1/jobs?id=at-x1&scales=1&format=png", await photo())).status).toBe(202);
  });
});

describe("a job's temperature", () => {
  async function temperatureRun(tokens: number, asked: string) {
    const seen: number[] = [];
    const r = await runner({ manifest: { ...manifest, tokens }, model: nearestModel(16, (_n, settings) => void seen.push(settings.temperature)) });
    expect((await createAndFinish(r, "j_t", `scales=2&format=png&temperature=${asked}`)).status).toBe("succeeded");
    return seen;
  }

  it("is the one asked for where the model samples", async () => {
    expect(new Set(await temperatureRun(4, "1.5"))).toEqual(new Set([1.5]));
  });

  it("is 0 for a deterministic model (tokens 0), whatever was asked: every temperature gives it the same pixels", async () => {
    expect(new Set(await temperatureRun(0, "1.5"))).toEqual(new Set([0]));
  });
});

describe("a job's clean-up strength", () => {
  async function cleanupRun(cleanup: boolean, query: string, image?: Buffer) {
    const seen: number[] = [];
    const r = await runner({ manifest: { ...manifest, cleanup }, model: nearestModel(16, (_n, settings) => void seen.push(settings.cleanup)) });
    const job = await createAndFinish(r, "j_c", `scales=2&format=png${query}`, image);
    expect(job.status).toBe("succeeded");
    return { seen: new Set(seen), job };
  }

  /** The photo with pseudo-random noise of up to 40 levels in each channel. */
  const noisyPhoto = () => {
    const noisy = (level: number, x: number, y: number) => Math.min(255, Math.max(0, Math.round(level + 40 * ((Math.sin(x * 12.9898 + y * 78.233) * 43758.5453) % 1))));
    return rawImage(40, 30, (x, y) => [noisy(x * 6, x, y), noisy(y * 8, x + 97, y), noisy(100, x + 194, y)]).png().toBuffer();
  };

  it("is the one asked for where the model takes one", async () => {
    expect((await cleanupRun(true, "&cleanup=0.25")).seen).toEqual(new Set([0.25]));
  });

  it("is the image's own where the query has none (auto): the default, 0.75, for a clean photo, and the job says so", async () => {
    const { seen, job } = await cleanupRun(true, "");
    expect(seen).toEqual(new Set([0.75]));
    expect(job.cleanup).toBe(0.75);
  });

  it("is 1 for a noisy photo under auto", async () => {
    const { seen, job } = await cleanupRun(true, "&cleanup=auto", await noisyPhoto());
    expect(seen).toEqual(new Set([1]));
    expect(job.cleanup).toBe(1);
  });

  it("is less under auto for a photo sent as a JPEG of quality 90 or finer, the default for a coarser JPEG", async () => {
    const photo = (quality: number) => rawImage(40, 30, (x, y) => [x * 6, y * 8, 100]).jpeg({ quality }).toBuffer();
    const [fine, coarse] = [await cleanupRun(true, "", await photo(92)), await cleanupRun(true, "", await photo(80))];
    expect([fine.seen, fine.job.cleanup]).toEqual([new Set([0.5]), 0.5]);
    expect([coarse.seen, coarse.job.cleanup]).toEqual([new Set([0.75]), 0.75]);
  });

  it("is 1 for a model without the setting, whatever was asked", async () => {
    expect((await cleanupRun(false, "&cleanup=0")).seen).toEqual(new Set([1]));
  });
});

describe("authentication", () => {
  it("accepts the worker's URLSearchParams encoding: the signature covers the query as sent (1%2C2)", async () => {
    const r = await runner();
    const path = `/v1/jobs?${new URLSearchParams({ id: "j_enc", scales: "1,2", format: "png", temperature: "0" })}`;
    expect(path).toContain("scales=1%2C2");
    const response = await r.request("POST", path, await photo());
    expect(response.status).toBe(202);
    await r.jobs.drain();
    expect(((await (await r.request("GET", "/v1/jobs/j_enc")).json()) as Job).outputs?.map((o) => o.scale)).toEqual([1, 2]);
  });

  it("refuses a request without a signature with 401 runner_auth", async () => {
    const response = await (await runner()).app.request("/v1/jobs/a");
    expect(response.status).toBe(401);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(await response.json()).toMatchObject({ code: "runner_auth" });
  });

  it("refuses a timestamp outside the replay window", async () => {
    const { app } = await runner();
    const stale = signRequest(SECRET, "GET", "/v1/jobs/a", new Uint8Array(), Math.floor(Date.now() / 1000) - 301);
    expect((await app.request("/v1/jobs/a", { headers: stale })).status).toBe(401);
  });

  it("refuses a body that differs from the signed one", async () => {
    const { app } = await runner();
    const headers = signRequest(SECRET, "POST", "/v1/jobs?id=a", await photo());
    expect((await app.request("/v1/jobs?id=a", { method: "POST", body: Buffer.from("other"), headers })).status).toBe(401);
  });

  it("refuses a query that differs from the signed one", async () => {
    const { app } = await runner();
    const headers = signRequest(SECRET, "GET", "/v1/jobs/a", new Uint8Array());
    expect((await app.request("/v1/jobs/b", { headers })).status).toBe(401);
  });

  it("refuses a signature made with another secret", async () => {
    const { app } = await runner();
    expect((await app.request("/v1/jobs/a", { headers: signRequest("another-secret-0123456789", "GET", "/v1/jobs/a", new Uint8Array()) })).status).toBe(401);
  });

  it("leaves /healthz and /readyz open", async () => {
    const { app } = await runner();
    for (const path of ["/healthz", "/readyz"]) expect((await app.request(path)).status).toBe(200);
  });

  it("does not serve /metrics on the API's port: they have a listener of their own", async () => {
    const { app } = await runner();
    expect((await app.request("/metrics")).status).toBe(404);
  });
});

describe("jobs", () => {
  it("creates a job (202), runs it and lists its stored outputs", async () => {
    const r = await runner();
    const response = await r.request("POST", "/v1/jobs?id=j_1&scales=2,4&format=webp&quality=80", await photo());
    expect(response.status).toBe(202);
    // An idle runner puts the first tiles into a batch at once.
    expect(await response.json()).toMatchObject({ id: "j_1", status: "running", model: { id: "m", version: "1" }, input: { width: 40, height: 30 }, progress: { tilesDone: 0 } });
    await r.jobs.drain();
    const job = (await (await r.request("GET", "/v1/jobs/j_1")).json()) as Job;
    expect(job.status).toBe("succeeded");
    expect(job.progress.tilesDone).toBe(job.progress.tilesTotal);
    expect(job.outputs?.map((o) => [o.scale, o.key, o.contentType, o.width, o.height])).toEqual([
      [2, "results/j_1/x2.webp", "image/webp", 80, 60],
      [4, "results/j_1/x4.webp", "image/webp", 160, 120],
    ]);
  });

  it("serves an output's bytes with its type, length and sha256 ETag", async () => {
    const r = await runner();
    const job = await createAndFinish(r, "j_out");
    const output = job.outputs?.find((o) => o.scale === 4);
    const response = await r.request("GET", "/v1/jobs/j_out/outputs/4");
    expect(response.status).toBe(200);
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(response.headers.get("content-type")).toBe("image/png");
    expect(response.headers.get("content-length")).toBe(String(bytes.length));
    expect(response.headers.get("etag")).toBe(`"${createHash("sha256").update(bytes).digest("hex")}"`);
    expect(output?.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
    expect((await sharp(bytes).metadata()).width).toBe(160);
  });

  it("names JPEG outputs .jpeg, like every format by its name (the worker's result paths)", async () => {
    const job = await createAndFinish(await runner(), "j_jpeg", "scales=2&format=jpeg&quality=80");
    expect(job.outputs?.map((o) => [o.key, o.contentType])).toEqual([["results/j_jpeg/x2.jpeg", "image/jpeg"]]);
  });

  it("answers 404 output_not_found for a scale that was not requested", async () => {
    const r = await runner();
    await createAndFinish(r, "j_x2", "scales=2");
    expect(await (await r.request("GET", "/v1/jobs/j_x2/outputs/4")).json()).toMatchObject({ code: "output_not_found" });
  });

  it("is idempotent: the same id returns the existing job with 200, whatever the new body", async () => {
    const r = await runner();
    const first = await createAndFinish(r, "j_same");
    const again = await r.request("POST", "/v1/jobs?id=j_same", await rawImage(8, 8, () => [0, 0, 0]).png().toBuffer());
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual(first);
  });

  it("creates one job for two concurrent requests with the same id", async () => {
    const r = await runner();
    const body = await photo();
    const statuses = (await Promise.all([r.request("POST", "/v1/jobs?id=j_race", body), r.request("POST", "/v1/jobs?id=j_race", body)])).map((x) => x.status).sort();
    expect(statuses).toEqual([200, 202]);
    await r.jobs.drain();
  });

  it("answers 404 job_not_found for an unknown id", async () => {
    const response = await (await runner()).request("GET", "/v1/jobs/nope");
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ code: "job_not_found" });
  });

  it.each([
    ["empty", Buffer.alloc(0), 400, "image_empty"],
    ["not an image", Buffer.from("%PDF-1.7 definitely not a picture"), 415, "image_unsupported_type"],
  ])("refuses a bad image (%s) with a problem and stores nothing", async (_name, body, status, code) => {
    const r = await runner();
    const response = await r.request("POST", "/v1/jobs?id=j_bad", body);
    expect(response.status).toBe(status);
    expect(await response.json()).toMatchObject({ code });
    expect((await r.request("GET", "/v1/jobs/j_bad")).status).toBe(404);
  });

  it("refuses a truncated image with 422 image_corrupt", async () => {
    const r = await runner();
    const png = await photo();
    const response = await r.request("POST", "/v1/jobs?id=j_cut", png.subarray(0, png.length - 40));
    expect(response.status).toBe(422);
  });

  it("refuses an image over the pixel limit with 422 image_too_large, as the worker's edge does", async () => {
    const r = await runner();
    const response = await r.request("POST", "/v1/jobs?id=j_big", await rawImage(400, 300, () => [1, 2, 3]).png().toBuffer());
    expect(response.status).toBe(422);
    expect(await response.json()).toMatchObject({ code: "image_too_large" });
  });

  it("refuses a body over the byte limit with 413 before reading it", async () => {
    const r = await runner();
    const response = await r.request("POST", "/v1/jobs?id=j_huge", new Uint8Array(1_000_001));
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ code: "payload_too_large" });
  });

  it.each(["scales=3", "format=auto", "quality=0", "temperature=-1", "cleanup=1.5", "format=gif"])("refuses an invalid query (%s) with 400", async (query) => {
    const response = await (await runner()).request("POST", `/v1/jobs?id=j_q&${query}`, await photo());
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: "invalid_request" });
  });

  it("refuses an invalid job id with 400", async () => {
    expect((await (await runner()).request("POST", "/v1/jobs?id=../../etc", await photo())).status).toBe(400);
  });

  it("reads the image from a storage key when `source` is given", async () => {
    const r = await runner();
    await r.store.put("uploads/in.png", await photo(), "image/png");
    expect((await r.request("POST", "/v1/jobs?id=j_src&source=uploads/in.png&scales=2")).status).toBe(202);
    await r.jobs.drain();
    expect(await (await r.request("GET", "/v1/jobs/j_src")).json()).toMatchObject({ status: "succeeded", input: { width: 40, height: 30 } });
  });

  it("answers 422 source_not_found for a missing source key", async () => {
    const response = await (await runner()).request("POST", "/v1/jobs?id=j_nosrc&source=uploads/missing.png");
    expect(response.status).toBe(422);
    expect(await response.json()).toMatchObject({ code: "source_not_found" });
  });

  it("answers 429 with Retry-After when the queue is full", async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const r = await runner({ model: nearestModel(16, () => gate), maxQueuedTiles: 8 });
    expect((await r.request("POST", "/v1/jobs?id=j_a", await photo())).status).toBe(202);
    const refused = await r.request("POST", "/v1/jobs?id=j_b", await photo());
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({ code: "runner_busy" });
    release();
    await r.jobs.drain();
    expect((await r.request("GET", "/v1/jobs/j_b")).status).toBe(404);
  });

  it("refuses a job that needs more memory than one job may hold, with 413 job_too_large, before any tile runs", async () => {
    const model = nearestModel(16);
    const needs = taskMemoryBytes(40, 30, [1, 2, 4], false);
    const r = await runner({ model, memory: { jobBytes: needs - 1, totalBytes: 1 << 30 } });
    const refused = await r.request("POST", "/v1/jobs?id=j_huge&scales=1,2,4", await photo());
    expect(refused.status).toBe(413);
    expect(await refused.json()).toMatchObject({ code: "job_too_large" });
    expect(model.runs).toEqual([]);
    expect((await r.request("GET", "/v1/jobs/j_huge")).status).toBe(404);
    // The same image at x1 alone needs far less, and runs.
    expect((await r.request("POST", "/v1/jobs?id=j_small&scales=1", await photo())).status).toBe(202);
  });

  it("answers 429 while the jobs in flight hold the memory for jobs, and admits again once they end", async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const needs = taskMemoryBytes(40, 30, [1, 2, 4], false);
    const r = await runner({ model: nearestModel(16, () => gate), memory: { jobBytes: needs, totalBytes: needs + needs / 2 } });
    expect((await r.request("POST", "/v1/jobs?id=j_first", await photo())).status).toBe(202);
    const refused = await r.request("POST", "/v1/jobs?id=j_second", await photo());
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({ code: "runner_busy" });
    release();
    await r.jobs.drain();
    expect((await r.request("POST", "/v1/jobs?id=j_second", await photo())).status).toBe(202);
    await r.jobs.drain();
    expect(await (await r.request("GET", "/v1/jobs/j_second")).json()).toMatchObject({ status: "succeeded" });
  });

  /**
   * A 200x150 x4 job run to its end, then a second admitted (and held in the model) with `spare` bytes of
   * the memory for jobs beside it: `ended` is checked after the first, `admitted` at the second's admission.
   */
  async function endThenAdmit(spare: number, ended: () => void, admitted: () => void) {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const large = await rawImage(200, 150, (x, y) => [x, y, 100]).png().toBuffer();
    const needs = taskMemoryBytes(200, 150, [4], false);
    let gated = false;
    const r = await runner({ model: nearestModel(16, () => (gated ? gate : undefined)), memory: { jobBytes: needs, totalBytes: needs + spare } });
    sumChunks.trim();
    rgbBuffers.trim();
    await createAndFinish(r, "j_first", "scales=4", large);
    ended();
    gated = true;
    expect((await r.request("POST", "/v1/jobs?id=j_second&scales=4", large)).status).toBe(202);
    admitted();
    release();
    await r.jobs.drain();
    expect(await (await r.request("GET", "/v1/jobs/j_second")).json()).toMatchObject({ status: "succeeded" });
  }

  it("keeps the blend memory of ended jobs within what the memory for jobs leaves beside the jobs in flight", async () => {
    const spare = 4 * 2 ** 20; // less than the one 8-MiB chunk the sum of an ended job leaves
    await endThenAdmit(
      spare,
      () => expect(sumChunks.freeBytes).toBeGreaterThan(spare),
      () => expect(sumChunks.freeBytes).toBeLessThanOrEqual(spare),
    );
  });

  it("keeps the 8-bit image memory of ended jobs within what the memory for jobs and the kept blend memory leave", async () => {
    const spare = 2 ** 20; // less than the 1.44 MB image (800x600 RGB) the ended job leaves
    await endThenAdmit(
      spare,
      () => expect(rgbBuffers.freeBytes).toBeGreaterThanOrEqual(800 * 600 * 3),
      () => expect(rgbBuffers.freeBytes + sumChunks.freeBytes).toBeLessThanOrEqual(spare),
    );
  });

  it("is running, with no tile done yet, while its first batch is in the model", async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const r = await runner({ model: nearestModel(16, () => gate) });
    expect((await r.request("POST", "/v1/jobs?id=j_first", await photo())).status).toBe(202);
    await vi.waitFor(async () => expect(await (await r.request("GET", "/v1/jobs/j_first")).json()).toMatchObject({ status: "running", progress: { tilesDone: 0 } }));
    release();
    await r.jobs.drain();
    expect(await (await r.request("GET", "/v1/jobs/j_first")).json()).toMatchObject({ status: "succeeded" });
  });

  it("fails a job whose model run fails, with a stable error code", async () => {
    const model = nearestModel(16, () => Promise.reject(new Error("CUDA error: out of memory")));
    const r = await runner({ model });
    expect((await r.request("POST", "/v1/jobs?id=j_fail", await photo())).status).toBe(202);
    await r.jobs.drain();
    expect(await (await r.request("GET", "/v1/jobs/j_fail")).json()).toMatchObject({ status: "failed", error: { code: "inference_failed" } });
  });

  it("never reports succeeded before the outputs and the record are stored", async () => {
    let releaseRecord: () => void = () => undefined;
    const recordGate = new Promise<void>((resolve) => (releaseRecord = resolve));
    let recordWaiting: () => void = () => undefined;
    const recordReached = new Promise<void>((resolve) => (recordWaiting = resolve));
    const disk = new LocalStore(await tempDir("hvar-runner-"));
    const writes: { key: string; status?: string }[] = [];
    const store: ObjectStore = {
      get: (key) => disk.get(key),
      delete: (key) => disk.delete(key),
      async put(key, bytes, type) {
        const status = key.startsWith("jobs/") ? (JSON.parse(Buffer.from(bytes).toString()) as Job).status : undefined;
        if (status === "succeeded") {
          recordWaiting();
          await recordGate;
        }
        await disk.put(key, bytes, type);
        writes.push({ key, ...(status ? { status } : {}) });
      },
    };
    const r = await runner({ store });
    await r.request("POST", "/v1/jobs?id=j_order&scales=2", await photo());
    // The runner is about to write the final record: the outputs are stored, and the job is not yet succeeded.
    await recordReached;
    expect(writes).toContainEqual({ key: "results/j_order/x2.png" });
    expect(writes.filter((w) => w.status === "succeeded")).toEqual([]);
    expect(((await (await r.request("GET", "/v1/jobs/j_order")).json()) as Job).status).not.toBe("succeeded");
    releaseRecord();
    await r.jobs.drain();
    expect(writes.at(-1)).toEqual({ key: "jobs/j_order.json", status: "succeeded" });
    expect(((await (await r.request("GET", "/v1/jobs/j_order")).json()) as Job).status).toBe("succeeded");
  });

  it("still answers for a finished job and serves its outputs after a restart", async () => {
    const store = new LocalStore(await tempDir("hvar-runner-"));
    const before = await createAndFinish(await runner({ store }), "j_keep");
    const restarted = await runner({ store });
    expect(await (await restarted.request("GET", "/v1/jobs/j_keep")).json()).toEqual(before);
    expect((await restarted.request("GET", "/v1/jobs/j_keep/outputs/2")).status).toBe(200);
    expect((await restarted.request("POST", "/v1/jobs?id=j_keep", await photo())).status).toBe(200);
  });

  it("refuses new jobs with 503 and fails readiness while draining", async () => {
    const r = await runner({ draining: () => true });
    expect((await r.request("POST", "/v1/jobs?id=j_late", await photo())).status).toBe(503);
    expect((await r.app.request("/readyz")).status).toBe(503);
  });
});

describe("request ids", () => {
  it("are the worker's: the runner logs a job, and every request about it, under the X-Request-Id the job came with", async () => {
    const lines: { requestId?: string; msg?: string; jobId?: string }[] = [];
    const log = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const r = await runner({ log });
    const headers = { "x-request-id": "req_fromtheworker00001" };
    expect((await r.request("POST", "/v1/jobs?id=j_logged&scales=2&format=png", await photo(), headers)).status).toBe(202);
    await r.jobs.drain();
    await r.request("GET", "/v1/jobs/j_logged", new Uint8Array(), headers);
    expect(lines.filter((line) => line.jobId === "j_logged").map((line) => line.msg)).toEqual(["job accepted", "job succeeded"]);
    expect(new Set(lines.map((line) => line.requestId))).toEqual(new Set(["req_fromtheworker00001"]));
  });
});

describe("/metrics", () => {
  it("exposes queue depth, batch sizes, tile latency and jobs by outcome in Prometheus text", async () => {
    const r = await runner();
    await createAndFinish(r, "j_m");
    const response = await r.scrape();
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toMatch(/^hvar_runner_queue_depth_tiles 0$/m);
    expect(text).toMatch(/^hvar_runner_batch_size_count \d+$/m);
    expect(text).toMatch(/^hvar_runner_tile_seconds_bucket\{le="\+Inf"\} \d+$/m);
    expect(text).toMatch(/^hvar_runner_jobs_total\{outcome="succeeded"\} 1$/m);
    expect(text).toMatch(/^hvar_runner_jobs_in_flight\{status="running"\} 0$/m);
  });
});

describe("POST /v1/jobs/<id>/cancel", () => {
  /** A runner whose model waits until `release()`, so a job stays in flight as long as a test needs. */
  async function busyRunner(store?: ObjectStore) {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const model = nearestModel(16, () => gate);
    return { ...(await runner({ model, ...(store ? { store } : {}) })), model, release };
  }

  it("ends a job in flight as failed with job_canceled, and answers that", async () => {
    const r = await busyRunner();
    expect((await r.request("POST", "/v1/jobs?id=j_stop", await photo())).status).toBe(202);
    const response = await r.request("POST", "/v1/jobs/j_stop/cancel");
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ id: "j_stop", status: "failed", error: { code: "job_canceled" } });
    r.release();
  });

  it("takes the job's tiles out of the queue at once", async () => {
    const r = await busyRunner();
    await r.request("POST", "/v1/jobs?id=j_queue", await photo());
    expect(await (await r.scrape()).text()).toMatch(/^hvar_runner_queue_depth_tiles [1-9]\d*$/m);
    await r.request("POST", "/v1/jobs/j_queue/cancel");
    const metrics = await (await r.scrape()).text();
    expect(metrics).toMatch(/^hvar_runner_queue_depth_tiles 0$/m);
    expect(metrics).toMatch(/^hvar_runner_jobs_total\{outcome="canceled"\} 1$/m);
    r.release();
  });

  it("stores the canceled job, so a restarted runner still answers for it", async () => {
    const store = new LocalStore(await tempDir("hvar-runner-"));
    const r = await busyRunner(store);
    await r.request("POST", "/v1/jobs?id=j_kept", await photo());
    const canceled = await (await r.request("POST", "/v1/jobs/j_kept/cancel")).json();
    r.release();
    await r.jobs.drain();
    const restarted = await runner({ store });
    expect(await (await restarted.request("GET", "/v1/jobs/j_kept")).json()).toEqual(canceled);
    expect(await store.get("results/j_kept/x1.png")).toBeUndefined();
  });

  it("answers a job that already ended as it is", async () => {
    const r = await runner();
    const done = await createAndFinish(r, "j_done");
    const response = await r.request("POST", "/v1/jobs/j_done/cancel");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(done);
  });

  it("remembers an id it has not seen as canceled, so a submit arriving after its cancel does no work", async () => {
    const model = nearestModel(16);
    const r = await runner({ model });
    expect(await (await r.request("POST", "/v1/jobs/j_early/cancel")).json()).toMatchObject({ status: "failed", error: { code: "job_canceled" } });
    const late = await r.request("POST", "/v1/jobs?id=j_early", await photo());
    expect(late.status).toBe(200);
    expect(await late.json()).toMatchObject({ id: "j_early", status: "failed", error: { code: "job_canceled" } });
    await r.jobs.drain();
    expect(model.runs).toEqual([]);
  });

  it("requires the worker's signature", async () => {
    const { app } = await runner();
    expect((await app.request("/v1/jobs/j_any/cancel", { method: "POST" })).status).toBe(401);
  });
});

describe("replicas sharing one store behind a load balancer", () => {
  /** A replica whose model waits until `release()`, so its jobs stay in flight as long as a test needs. */
  async function gatedReplica(store: ObjectStore, replica: string) {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const model = nearestModel(16, () => gate);
    return { ...(await runner({ model, store, replica })), model, release };
  }
  /** A clock past every heartbeat written until now: to this replica, the other replicas' owners have died. */
  const afterStale = () => Date.now() + STALE_MS + 1;

  it("answers for a job another replica runs, from its shared record, without running it twice", async () => {
    const store = new LocalStore(await tempDir("hvar-runner-"));
    const a = await gatedReplica(store, "replica-a");
    const model = nearestModel(16);
    const b = await runner({ store, replica: "replica-b", model });
    expect((await a.request("POST", "/v1/jobs?id=j_shared&scales=2", await photo())).status).toBe(202);

    const seen = await b.request("GET", "/v1/jobs/j_shared");
    expect(seen.status).toBe(200);
    expect(await seen.json()).toMatchObject({ id: "j_shared", status: "running", input: { width: 40, height: 30 } });
    expect(Object.keys((await (await b.request("GET", "/v1/jobs/j_shared")).json()) as Job)).not.toContain("lease");
    const again = await b.request("POST", "/v1/jobs?id=j_shared&scales=2", await photo());
    expect(again.status).toBe(200);

    a.release();
    await a.jobs.drain();
    await b.jobs.drain();
    expect(model.runs).toEqual([]);
    expect(await (await b.request("GET", "/v1/jobs/j_shared")).json()).toMatchObject({ status: "succeeded", outputs: [{ scale: 2 }] });
    expect((await b.request("GET", "/v1/jobs/j_shared/outputs/2")).status).toBe(200);
  });

  it("shows the owner's progress, as of its last heartbeat", async () => {
    const store = new LocalStore(await tempDir("hvar-runner-"));
    let runs = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    // The first batch goes through, the next waits: the job is running with some tiles done.
    const a = await runner({ store, model: nearestModel(16, () => (++runs > 1 ? gate : undefined)), replica: "replica-a" });
    const b = await runner({ store, replica: "replica-b" });
    await a.request("POST", "/v1/jobs?id=j_progress&scales=1", await rawImage(64, 64, () => [9, 9, 9]).png().toBuffer());
    await vi.waitFor(async () => {
      const job = (await (await b.request("GET", "/v1/jobs/j_progress")).json()) as Job;
      expect(job.status).toBe("running");
      expect(job.progress.tilesDone).toBeGreaterThan(0);
    });
    release();
    await a.jobs.drain();
  });

  it("answers a job whose owner's heartbeat went stale as unknown, and takes it over when it is sent again", async () => {
    const store = new LocalStore(await tempDir("hvar-runner-"));
    const a = await gatedReplica(store, "replica-a");
    const model = nearestModel(16);
    const b = await runner({ store, replica: "replica-b", model, now: afterStale });
    await a.request("POST", "/v1/jobs?id=j_orphan&scales=2", await photo());

    expect(await (await b.request("GET", "/v1/jobs/j_orphan")).json()).toMatchObject({ code: "job_not_found" });
    expect((await b.request("POST", "/v1/jobs?id=j_orphan&scales=2", await photo())).status).toBe(202);
    await b.jobs.drain();
    expect(model.runs.length).toBeGreaterThan(0);
    const done = (await (await b.request("GET", "/v1/jobs/j_orphan")).json()) as Job;
    expect(done).toMatchObject({ status: "succeeded" });

    // The former owner, alive after all, lets go at its next heartbeat, and never stores over the new owner's results.
    await vi.waitFor(async () => expect(await (await a.scrape()).text()).toMatch(/^hvar_runner_jobs_total\{outcome="taken_over"\} 1$/m));
    a.release();
    await a.jobs.drain();
    expect(await (await a.request("GET", "/v1/jobs/j_orphan")).json()).toEqual(done);
  });

  it("answers a job this replica ran before it restarted as unknown at once, and takes it over", async () => {
    const store = new LocalStore(await tempDir("hvar-runner-"));
    const before = await gatedReplica(store, "replica-a");
    await before.request("POST", "/v1/jobs?id=j_restart&scales=2", await photo());
    const restarted = await runner({ store, replica: "replica-a" });

    expect((await restarted.request("GET", "/v1/jobs/j_restart")).status).toBe(404);
    expect((await restarted.request("POST", "/v1/jobs?id=j_restart&scales=2", await photo())).status).toBe(202);
    await restarted.jobs.drain();
    expect(await (await restarted.request("GET", "/v1/jobs/j_restart")).json()).toMatchObject({ status: "succeeded" });
    before.release();
    await before.jobs.drain();
  });

  it("cancels a job through another replica: the owner stops it at its next heartbeat, and the answer says so", async () => {
    const store = new LocalStore(await tempDir("hvar-runner-"));
    const a = await gatedReplica(store, "replica-a");
    const b = await runner({ store, replica: "replica-b" });
    await a.request("POST", "/v1/jobs?id=j_far&scales=2", await photo());
    expect(await (await a.scrape()).text()).toMatch(/^hvar_runner_queue_depth_tiles [1-9]\d*$/m);

    const response = await b.request("POST", "/v1/jobs/j_far/cancel");
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ id: "j_far", status: "failed", error: { code: "job_canceled" } });
    const owner = await (await a.scrape()).text();
    expect(owner).toMatch(/^hvar_runner_queue_depth_tiles 0$/m);
    expect(owner).toMatch(/^hvar_runner_jobs_total\{outcome="canceled"\} 1$/m);
    expect(await (await a.request("GET", "/v1/jobs/j_far")).json()).toMatchObject({ status: "failed", error: { code: "job_canceled" } });
    expect(await store.get("jobs/j_far.cancel")).toBeUndefined();
    a.release();
  });

  it("cancels a job whose owner died by storing it as canceled, so a late resend does no work", async () => {
    const store = new LocalStore(await tempDir("hvar-runner-"));
    const a = await gatedReplica(store, "replica-a");
    const model = nearestModel(16);
    const b = await runner({ store, replica: "replica-b", model, now: afterStale });
    await a.request("POST", "/v1/jobs?id=j_dead&scales=2", await photo());

    expect(await (await b.request("POST", "/v1/jobs/j_dead/cancel")).json()).toMatchObject({ status: "failed", input: { width: 40, height: 30 }, error: { code: "job_canceled" } });
    expect(await (await b.request("POST", "/v1/jobs?id=j_dead&scales=2", await photo())).json()).toMatchObject({ status: "failed", error: { code: "job_canceled" } });
    await b.jobs.drain();
    expect(model.runs).toEqual([]);
    a.release();
    await a.jobs.drain();
  });
});

describe("the size the worker declared (it bills and limits by it)", () => {
  it("refuses an image that decodes to another size with 422 image_size_mismatch, before any work", async () => {
    const model = nearestModel(16);
    const r = await runner({ model });
    // The GIF's logical screen says 1x1; its frame, which the decoder makes the image, is 1500x1500.
    const crafted = gif({ width: 1, height: 1 }, [{ width: 1500, height: 1500 }]);
    const response = await r.request("POST", "/v1/jobs?id=j_lie&size=1x1", crafted);
    expect(response.status).toBe(422);
    expect(await response.json()).toMatchObject({ code: "image_size_mismatch", title: expect.stringContaining("1500x1500") });
    expect(model.runs).toEqual([]);
    expect((await r.request("GET", "/v1/jobs/j_lie")).status).toBe(404);
  });

  it("takes an image of the declared size, EXIF orientation applied, and its outputs are that size times the scale", async () => {
    const r = await runner();
    const stored = await rawImage(48, 40, (x, y) => [x * 5, y * 6, 90]).jpeg().toBuffer();
    const turned = jpegWithExif(stored, exifTiff(6));
    expect((await r.request("POST", "/v1/jobs?id=j_turned&size=40x48&scales=1,2", turned)).status).toBe(202);
    await r.jobs.drain();
    const job = (await (await r.request("GET", "/v1/jobs/j_turned")).json()) as Job;
    expect(job).toMatchObject({ status: "succeeded", input: { width: 40, height: 48 } });
    expect(job.outputs?.map((o) => [o.scale, o.width, o.height])).toEqual([
      [1, 40, 48],
      [2, 80, 96],
    ]);
    const x2 = await r.request("GET", "/v1/jobs/j_turned/outputs/2");
    expect(await sharp(Buffer.from(await x2.arrayBuffer())).metadata()).toMatchObject({ width: 80, height: 96 });
  });

  it("refuses the stored size of an image EXIF turns a quarter", async () => {
    const r = await runner();
    const turned = jpegWithExif(await rawImage(48, 40, () => [10, 20, 30]).jpeg().toBuffer(), exifTiff(6));
    const response = await r.request("POST", "/v1/jobs?id=j_unturned&size=48x40", turned);
    expect(response.status).toBe(422);
    expect(await response.json()).toMatchObject({ code: "image_size_mismatch" });
  });

  it.each(["size=0x5", "size=40", "size=40x30x2", "size=-4x3"])("refuses a malformed size (%s) with 400", async (query) => {
    const response = await (await runner()).request("POST", `/v1/jobs?id=j_size&${query}`, await photo());
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: "invalid_request" });
  });
});
