/**
 * A Node HTTP server that speaks the runner API (gpu-runner/API.md, packages/contract) without a
 * model, for the worker's dispatch tests. It checks the HMAC signature and parses the job query like
 * a real runner, serves STUB_MODEL (the worker's MODEL_VERSION in these tests) unless told another,
 * and "upscales" by returning bytes derived from the input. A PNG tEXt chunk `hvar-test` picks a behaviour:
 * `fail` (the job fails), `hang` (the job never finishes), `slow` (running for SLOW_MS after the
 * submit, then succeeded: for tests about waiting), `garbled` (once submitted, a status the runner
 * API does not have: a runner answering nonsense), `reject` (422 `image_corrupt` on submit, as a
 * runner refuses an image it cannot decode), `unavailable` (503 on submit), `flaky` (503 to the
 * first FLAKY_REFUSALS submits of those bytes, by any stub of the pool: a pool that is down, then
 * back), `stall` (takes the job, answers the submit only after STALL_MS, as a busy runner does, then
 * hangs), `real` (real images of the upscaled size, resized by sharp, in the requested format: for
 * tests that decode or resize the outputs). Like a runner, it refuses an image that is not the `size`
 * declared with the job (reading only a PNG's IHDR) and reports that size. `GET /v1/model` answers
 * the model and STUB_LIMITS. A running job reports 1 of
 * 4 tiles. `POST /v1/jobs/<id>/cancel` ends a running job failed with JOB_CANCELED, as the runner
 * does, and remembers an unknown id as canceled; GET /__canceled lists the ids it was asked to cancel.
 *
 * It also receives webhooks for the tests: POST /__webhooks/<inbox>?fail=<n> records each delivery
 * (and answers 500 to the first n), GET /__webhooks/<inbox> lists them. GET /__request-ids/<job id>
 * lists the X-Request-Id of every call about the job (submits, polls, cancels, output downloads), in
 * order.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import {
  CONTENT_TYPES,
  DEFAULT_CLEANUP,
  JOB_CANCELED,
  MODEL_PATH,
  type Model,
  type OutputFormat,
  PROBLEM_CONTENT_TYPE,
  REPLAY_WINDOW_S,
  type RunnerJob,
  SIGNATURE_HEADER,
  type Scale,
  TIMESTAMP_HEADER,
  jobQuerySchema,
  problemBody,
  resultKey,
  signatureHeader,
  signingInput,
} from "@hvar/contract";
import sharp from "sharp";
import { STUB_LIMITS } from "./stub-limits";

/** The model the stubs serve; the worker's MODEL_VERSION in the tests names it (vitest.config.ts). */
export const STUB_MODEL: Model = { id: "hvar-stub", version: "0.0.0-test" };

interface StubJob {
  id: string;
  input: Buffer;
  width: number;
  height: number;
  scales: Scale[];
  format: OutputFormat;
  /** The strength a runner would apply: the query's own; `auto` reads none of the stub's images as noisy. */
  cleanup: number;
  behaviour: string;
  submittedAt: number;
  /** Real encoded outputs by scale (behaviour `real`). */
  real?: Map<number, Buffer>;
  canceled?: boolean;
}

export interface RunnerStub {
  url: string;
  close(): Promise<void>;
}

/** Submits of one `flaky` image (by its bytes) that the stubs refuse before they take it: one per stub of the pool. */
export const FLAKY_REFUSALS = 2;
/** Submits seen per `flaky` image, over every stub in this process. */
const flakySubmits = new Map<string, number>();

/** How long a `slow` job runs: longer than one request takes, well below a test's Prefer: wait. */
export const SLOW_MS = 2_000;
/** How long a `stall` submit waits before it answers. */
export const STALL_MS = 1_000;

function pngInfo(bytes: Buffer): { isPng: boolean; width: number; height: number; behaviour: string } {
  const isPng = bytes.length > 24 && bytes.readUInt32BE(0) === 0x89504e47;
  // The tEXt chunk's value, to the end of the chunk (its length precedes it): the CRC after it may
  // start with a letter.
  const at = bytes.indexOf("tEXthvar-test\0", 0, "latin1");
  const behaviour = at >= 4 ? bytes.toString("latin1", at + 14, at + 4 + bytes.readUInt32BE(at - 4)) : "ok";
  return isPng ? { isPng, width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20), behaviour } : { isPng, width: 40, height: 30, behaviour };
}

export function outputBytes(input: Uint8Array, jobId: string, scale: number): Buffer {
  return Buffer.concat([Buffer.from(`${jobId}/x${scale}:`), Buffer.from(input)]);
}

async function realOutputs(input: Buffer, width: number, height: number, scales: Scale[], format: OutputFormat): Promise<Map<number, Buffer>> {
  const encoded = new Map<number, Buffer>();
  for (const scale of scales) {
    const resized = sharp(input).resize(width * scale, height * scale, { fit: "fill" });
    const pipeline = format === "webp" ? resized.webp() : format === "avif" ? resized.avif() : format === "jpeg" ? resized.jpeg() : resized.png();
    encoded.set(scale, await pipeline.toBuffer());
  }
  return encoded;
}

const bytesOf = (job: StubJob, scale: number) => job.real?.get(scale) ?? outputBytes(job.input, job.id, scale);

function problem(res: ServerResponse, status: number, code: string, title = code): void {
  res.writeHead(status, { "content-type": PROBLEM_CONTENT_TYPE });
  res.end(JSON.stringify(problemBody({ status, code, title })));
}

function verified(req: IncomingMessage, body: Buffer, secret: string): boolean {
  const timestamp = req.headers[TIMESTAMP_HEADER.toLowerCase()];
  const signature = req.headers[SIGNATURE_HEADER.toLowerCase()];
  if (typeof timestamp !== "string" || typeof signature !== "string") return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > REPLAY_WINDOW_S) return false;
  const bodySha256 = createHash("sha256").update(body).digest("hex");
  const input = signingInput({ method: req.method ?? "", pathAndQuery: req.url ?? "", timestamp, bodySha256 });
  const expected = signatureHeader(createHmac("sha256", secret).update(input).digest("hex"));
  return signature.length === expected.length && timingSafeEqual(Buffer.from(signature), Buffer.from(expected));
}

/** The job as the runner API answers it; `polled` is false for the answer to the submit itself. */
function jobJson(job: StubJob, model: Model, polled = true): RunnerJob | { id: string; status: string } {
  if (job.behaviour === "garbled" && polled) return { id: job.id, status: "exploded" };
  const failed = job.behaviour === "fail" || job.canceled === true;
  const running = !failed && (job.behaviour === "hang" || job.behaviour === "stall" || (job.behaviour === "slow" && Date.now() - job.submittedAt < SLOW_MS));
  return {
    id: job.id,
    status: failed ? "failed" : running ? "running" : "succeeded",
    model,
    input: { width: job.width, height: job.height },
    cleanup: job.cleanup,
    progress: running ? { tilesDone: 1, tilesTotal: 4 } : { tilesDone: 4, tilesTotal: 4 },
    ...(job.canceled
      ? { error: { ...JOB_CANCELED } }
      : failed
        ? { error: { code: "inference_failed", title: "The stub was asked to fail" } }
        : {}),
    ...(failed || running
      ? {}
      : {
          runnerMs: 42,
          outputs: job.scales.map((scale) => {
            const bytes = bytesOf(job, scale);
            return {
              scale,
              key: resultKey(job.id, scale, job.format),
              contentType: CONTENT_TYPES[job.format],
              width: job.width * scale,
              height: job.height * scale,
              bytes: bytes.length,
              sha256: createHash("sha256").update(bytes).digest("hex"),
            };
          }),
        }),
  };
}

export async function startRunnerStub(secret: string, model = STUB_MODEL): Promise<RunnerStub> {
  const jobs = new Map<string, StubJob>();
  /** Jobs whose next poll answers 404 although they stay known (`__hide`). */
  const hidden = new Set<string>();
  const requestIds = new Map<string, string[]>();
  const inboxes = new Map<string, { headers: Record<string, string>; body: string }[]>();
  const cancels: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url ?? "/", "http://stub");
      if (url.pathname === "/healthz") return void res.end('{"status":"ok"}');
      const inbox = /^\/__webhooks\/([\w-]+)$/.exec(url.pathname)?.[1];
      if (inbox) {
        const received = inboxes.get(inbox) ?? [];
        inboxes.set(inbox, received);
        if (req.method === "GET") return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(received));
        const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
        received.push({ headers, body: body.toString("utf8") });
        return void res.writeHead(received.length <= Number(url.searchParams.get("fail") ?? 0) ? 500 : 204).end();
      }
      // Test control: forget a job, as a runner that restarted would (API.md: in-flight jobs are lost).
      const forget = /^\/__forget\/([\w-]+)$/.exec(url.pathname)?.[1];
      if (forget && req.method === "POST") return void res.writeHead(jobs.delete(forget) ? 204 : 404).end();
      // Test control: the next poll of a job answers 404 while the job stays known, as a load-balanced
      // replica answers for a job whose owner just restarted while the others still see it alive.
      const hide = /^\/__hide\/([\w-]+)$/.exec(url.pathname)?.[1];
      if (hide && req.method === "POST") return void (hidden.add(hide), res.writeHead(204).end());
      const requestIdsOf = /^\/__request-ids\/([\w-]+)$/.exec(url.pathname)?.[1];
      if (requestIdsOf) return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(requestIds.get(requestIdsOf) ?? []));
      if (url.pathname === "/__canceled") return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(cancels));
      if (!verified(req, body, secret)) return problem(res, 401, "runner_auth");
      if (req.method === "GET" && url.pathname === MODEL_PATH) return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ model, limits: STUB_LIMITS }));
      const output = /^\/v1\/jobs\/([^/]+)\/outputs\/(\d)$/.exec(url.pathname);
      const cancel = /^\/v1\/jobs\/([^/]+)\/cancel$/.exec(url.pathname);
      const status = /^\/v1\/jobs\/([^/]+)$/.exec(url.pathname);
      const about = decodeURIComponent(output?.[1] ?? cancel?.[1] ?? status?.[1] ?? url.searchParams.get("id") ?? "");
      requestIds.set(about, [...(requestIds.get(about) ?? []), String(req.headers["x-request-id"] ?? "")]);
      if (req.method === "POST" && cancel) {
        const id = decodeURIComponent(cancel[1] ?? "");
        cancels.push(id);
        const job: StubJob = jobs.get(id) ?? { id, input: Buffer.alloc(0), width: 0, height: 0, scales: [], format: "png", cleanup: DEFAULT_CLEANUP, behaviour: "hang", submittedAt: Date.now() };
        if (jobJson(job, model).status === "running") job.canceled = true;
        jobs.set(id, job);
        return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(jobJson(job, model)));
      }
      if (req.method === "POST" && url.pathname === "/v1/jobs") {
        const id = url.searchParams.get("id") ?? "";
        const existing = jobs.get(id);
        if (existing) return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(jobJson(existing, model, false)));
        const query = jobQuerySchema.safeParse(Object.fromEntries(url.searchParams));
        if (!query.success) return problem(res, 400, "invalid_request");
        const { isPng, ...info } = pngInfo(body);
        const declared = query.data.size;
        if (declared) {
          if (isPng && (declared.width !== info.width || declared.height !== info.height)) return problem(res, 422, "image_size_mismatch");
          Object.assign(info, declared);
        }
        if (info.behaviour === "reject") return problem(res, 422, "image_corrupt", "The image is corrupt or truncated and could not be decoded.");
        if (info.behaviour === "unavailable") return problem(res, 503, "no_model");
        if (info.behaviour === "flaky") {
          const digest = createHash("sha256").update(body).digest("hex");
          const seen = (flakySubmits.get(digest) ?? 0) + 1;
          flakySubmits.set(digest, seen);
          if (seen <= FLAKY_REFUSALS) return problem(res, 503, "no_model");
        }
        const job: StubJob = {
          id,
          input: body,
          ...info,
          submittedAt: Date.now(),
          scales: query.data.scales,
          format: query.data.format,
          cleanup: query.data.cleanup === "auto" ? DEFAULT_CLEANUP : query.data.cleanup,
        };
        if (job.behaviour === "real") {
          return void realOutputs(body, job.width, job.height, job.scales, job.format).then((real) => {
            job.real = real;
            jobs.set(id, job);
            res.writeHead(202, { "content-type": "application/json" }).end(JSON.stringify(jobJson(job, model, false)));
          });
        }
        jobs.set(id, job);
        if (job.behaviour === "stall") return void setTimeout(() => res.writeHead(202, { "content-type": "application/json" }).end(JSON.stringify(jobJson(job, model, false))), STALL_MS);
        return void res.writeHead(202, { "content-type": "application/json" }).end(JSON.stringify(jobJson(job, model, false)));
      }
      if (req.method === "GET" && status) {
        const id = decodeURIComponent(status[1] ?? "");
        const job = hidden.delete(id) ? undefined : jobs.get(id);
        if (!job) return problem(res, 404, "job_not_found");
        return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(jobJson(job, model)));
      }
      if (req.method === "GET" && output) {
        const job = jobs.get(decodeURIComponent(output[1] ?? ""));
        const scale = job?.scales.find((s) => String(s) === output[2]);
        if (!job || scale === undefined) return problem(res, 404, "job_not_found");
        const bytes = bytesOf(job, scale);
        res.writeHead(200, {
          "content-type": CONTENT_TYPES[job.format],
          "content-length": String(bytes.length),
          etag: `"${createHash("sha256").update(bytes).digest("hex")}"`,
        });
        return void res.end(bytes);
      }
      problem(res, 404, "not_found");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A URL where nothing listens: a port that was free a moment ago. */
export async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}
