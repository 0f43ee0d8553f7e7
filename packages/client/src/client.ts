import { errorFrom, jobCanceledError, jobFailedError, retryAfterOf } from "./errors.js";
import type { CdnPurgeResult, OutputFormat, Scale, ServedModel, Upscale, UpscaleFromUrl, UpscaleList, UpscaleListQuery, UpscaleProgress, Usage, UsageQuery } from "./types.js";

/** What `upscale` takes as the image: anything fetch could send, read into memory first (see `bytesOf`). */
export type ImageInput = Blob | ArrayBuffer | ArrayBufferView | ReadableStream<Uint8Array>;

/**
 * An image the worker fetches itself: https on a public host, under one of the key's CDN origins
 * (`cdnOrigins`), at most the upload limit in size.
 */
export interface ImageUrl {
  url: string | URL;
}

const isImageUrl = (image: ImageInput | ImageUrl): image is ImageUrl =>
  typeof image === "object" && !(image instanceof Blob) && !ArrayBuffer.isView(image) && "url" in image;

export interface HvarClientOptions {
  /** Where the worker answers, e.g. "https://api.hvar.dev" or "http://127.0.0.1:8787". */
  baseUrl: string;
  /** An API key, `hvar_sk_...`. */
  apiKey: string;
  /** Another fetch (a proxy agent, tests); the global one by default. */
  fetch?: typeof fetch;
  /**
   * Retries of an answer-less request (network error) and of 429/503 answers that ask to come back
   * within 30 s. POSTs are retried with the same Idempotency-Key, so a retry never makes a second job.
   */
  maxRetries?: number;
}

export interface WaitOptions {
  /** Called with the job after every answer until it ends (queued, running, ..., succeeded). */
  onStatus?: (job: Upscale) => void;
  /** Called with the job's progress (tiles through the model) after every answer that carries one, while it runs. */
  onProgress?: (progress: UpscaleProgress, job: Upscale) => void;
  /** Fixed delay between polls; by default the worker's Retry-After (1 s). */
  pollIntervalMs?: number;
  /** Give up (UpscaleTimeoutError) after this long; default 10 minutes. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface UpscaleOptions extends WaitOptions {
  /** Any of 1 (cleaned, same size), 2 and 4; the worker's default is all three. */
  scales?: readonly Scale[];
  format?: OutputFormat;
  /** 1 to 100, for lossy formats. */
  quality?: number;
  /** Sampling temperature of generated detail, 0 (greedy, deterministic) to 2; a deterministic model answers 0 in `options`. */
  temperature?: number;
  /** How strongly x1 cleans the input before it is upscaled, 0 (not at all: a photo's grain kept) to 1 (fully), or `"auto"` (1 for a plainly noisy photo, 0.5 for one sent as a JPEG of quality 90-94, 0.25 from 95, else 0.75); the deployment's default when absent (`model().cleanup.default`); a model without the setting answers 1 in `options`. */
  cleanup?: number | "auto";
  /** Receives a signed upscale.succeeded / upscale.failed event (see verifyWebhook). */
  webhookUrl?: string;
  /** Same key and body: the same job; a different body with the key: 409 idempotency_key_reused. Default: a random UUID per call. */
  idempotencyKey?: string;
  /** Seconds the worker may hold the request until the job is done (`Prefer: wait`; it caps this at its MAX_WAIT_S). */
  wait?: number;
  /** false: return the first answer, which may be a queued job, instead of polling it to the end. */
  poll?: boolean;
  /** The image's media type; by default the Blob's, else octet-stream (the worker reads the type from the bytes anyway). */
  contentType?: string;
}

/** The job did not end within `timeoutMs`; it may still end later (`get` or a webhook will tell). */
export class UpscaleTimeoutError extends Error {
  override readonly name = "UpscaleTimeoutError";
  constructor(readonly job: Upscale) {
    super(`Upscale ${job.id} still ${job.status} at the deadline`);
  }
}

const DEFAULT_TIMEOUT_MS = 10 * 60_000;
const DEFAULT_POLL_MS = 1_000;
const MAX_RETRY_AFTER_S = 30;

const isDone = (job: Upscale) => job.status === "succeeded" || job.status === "failed" || job.status === "canceled";

/** Tells the callbacks about one answer. */
function report(job: Upscale, options: WaitOptions): void {
  options.onStatus?.(job);
  if (job.progress) options.onProgress?.(job.progress, job);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", abort);
      resolve();
    }, ms);
    const abort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", abort, { once: true });
  });
}

/**
 * The image as bytes. Streams are read to the end first: uploads are small (the worker's limit is
 * some megabytes), a known length lets the worker refuse an oversized image before reading it, and
 * a buffered body can be sent again on a retry, which a stream cannot (nor can fetch stream request
 * bodies everywhere).
 */
export async function bytesOf(image: ImageInput): Promise<Uint8Array<ArrayBuffer>> {
  if (image instanceof Blob) return new Uint8Array(await image.arrayBuffer());
  if (image instanceof ArrayBuffer) return new Uint8Array(image);
  // A copy: the view may be of a SharedArrayBuffer, or of a larger buffer than the image.
  if (ArrayBuffer.isView(image)) {
    const copy = new Uint8Array(image.byteLength);
    copy.set(new Uint8Array(image.buffer, image.byteOffset, image.byteLength));
    return copy;
  }
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (const reader = image.getReader(); ; ) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    length += value.length;
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/** The JSON body of POST /v1/upscales for an image by URL (UpscaleFromUrl in the worker's OpenAPI document). */
export function upscaleFromUrlBody(url: string | URL, options: UpscaleOptions): UpscaleFromUrl {
  return {
    image: String(url),
    ...(options.scales ? { scales: [...options.scales] } : {}),
    ...(options.format ? { format: options.format } : {}),
    ...(options.quality === undefined ? {} : { quality: options.quality }),
    ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
    ...(options.cleanup === undefined ? {} : { cleanup: options.cleanup }),
    ...(options.webhookUrl ? { webhook_url: options.webhookUrl } : {}),
  };
}

/** The query string of POST /v1/upscales (the names the worker's OpenAPI document gives). */
export function upscaleQuery(options: UpscaleOptions): URLSearchParams {
  const query = new URLSearchParams();
  if (options.scales) query.set("scales", options.scales.join(","));
  if (options.format) query.set("format", options.format);
  if (options.quality !== undefined) query.set("quality", String(options.quality));
  if (options.temperature !== undefined) query.set("temperature", String(options.temperature));
  if (options.cleanup !== undefined) query.set("cleanup", String(options.cleanup));
  if (options.webhookUrl) query.set("webhook_url", options.webhookUrl);
  return query;
}

/**
 * A client of the hvar API. Every method throws HvarError for an error answer (problem+json with
 * its stable `code`).
 *
 * @example
 * const hvar = new HvarClient({ baseUrl: "https://api.hvar.dev", apiKey: process.env.HVAR_API_KEY });
 * const job = await hvar.upscale(await fs.readFile("photo.jpg"), { scales: [2, 4], format: "webp" });
 * const byUrl = await hvar.upscale({ url: "https://images.example/photo.jpg" }, { scales: [2] });
 * for (const output of job.outputs ?? []) console.log(output.scale, output.url);
 */
export class HvarClient {
  readonly baseUrl: string;
  readonly #apiKey: string;
  readonly #fetch: typeof fetch;
  readonly #maxRetries: number;

  constructor(options: HvarClientOptions) {
    if (!options.apiKey) throw new TypeError("HvarClient needs an apiKey");
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.#apiKey = options.apiKey;
    // Bound: some runtimes refuse a fetch called as a method of another object.
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#maxRetries = options.maxRetries ?? 2;
  }

  /**
   * Upscales an image and, by default, waits until the job ends: with `wait`, the worker holds the
   * request up to that many seconds; past that (or without it) the job is polled at its Location.
   * Resolves with the succeeded job (signed URLs in `outputs`); a failed job throws HvarError with
   * the job's error code and `problem.jobId` (a canceled one: `job_canceled`).
   *
   * The image is its bytes (a file, buffer or stream), or `{ url }` for one the worker fetches
   * itself (under one of the key's CDN origins; HvarError `source_*` when it cannot).
   */
  async upscale(image: ImageInput | ImageUrl, options: UpscaleOptions = {}): Promise<Upscale> {
    const headers: Record<string, string> = {
      // A fresh key per call unless given: it is what makes the retries of this one call safe.
      "idempotency-key": options.idempotencyKey ?? crypto.randomUUID(),
    };
    if (options.wait !== undefined && options.wait > 0) headers.prefer = `wait=${Math.floor(options.wait)}`;
    let path = "/v1/upscales";
    let body: Uint8Array<ArrayBuffer> | string;
    if (isImageUrl(image)) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(upscaleFromUrlBody(image.url, options));
    } else {
      headers["content-type"] = options.contentType ?? (image instanceof Blob && image.type ? image.type : "application/octet-stream");
      body = await bytesOf(image);
      const query = upscaleQuery(options).toString();
      if (query) path += `?${query}`;
    }
    const response = await this.#request("POST", path, { headers, body, signal: options.signal });
    const job = (await response.json()) as Upscale;
    report(job, options);
    if (isDone(job) || options.poll === false) return job;
    const location = response.headers.get("location") ?? `/v1/upscales/${encodeURIComponent(job.id)}`;
    return this.#poll(job, location, retryAfterOf(response.headers), options);
  }

  /** The job as it is now (any status; a failed job is returned, not thrown). */
  async get(id: string, options: { signal?: AbortSignal } = {}): Promise<Upscale> {
    const response = await this.#request("GET", `/v1/upscales/${encodeURIComponent(id)}`, { signal: options.signal });
    return (await response.json()) as Upscale;
  }

  /** Polls a job until it ends, e.g. one started elsewhere; throws HvarError when it failed or was canceled. */
  async waitFor(id: string, options: WaitOptions = {}): Promise<Upscale> {
    const job = await this.get(id, options);
    report(job, options);
    if (isDone(job)) return conclude(job);
    return this.#poll(job, `/v1/upscales/${encodeURIComponent(id)}`, DEFAULT_POLL_MS / 1000, options);
  }

  /**
   * A page of the key's upscales, newest first (deleted ones left out), as last stored: `get` one
   * for its latest state. Pass the page's `nextCursor` as `cursor` for the next page (null: the last).
   */
  async list(query: UpscaleListQuery = {}, options: { signal?: AbortSignal } = {}): Promise<UpscaleList> {
    const params = new URLSearchParams();
    if (query.status) params.set("status", query.status);
    if (query.limit !== undefined) params.set("limit", String(query.limit));
    if (query.cursor) params.set("cursor", query.cursor);
    const search = params.toString();
    const response = await this.#request("GET", `/v1/upscales${search ? `?${search}` : ""}`, { signal: options.signal });
    return (await response.json()) as UpscaleList;
  }

  /**
   * Every upscale of the key (with `status`, if given), newest first, a page fetched as the
   * iteration reaches it.
   *
   * @example for await (const job of hvar.listAll({ status: "running" })) await hvar.cancel(job.id);
   */
  async *listAll(query: Omit<UpscaleListQuery, "cursor"> = {}, options: { signal?: AbortSignal } = {}): AsyncGenerator<Upscale, void, undefined> {
    let cursor: string | null = null;
    do {
      const page: UpscaleList = await this.list({ ...query, ...(cursor ? { cursor } : {}) }, options);
      yield* page.data;
      cursor = page.nextCursor;
    } while (cursor);
  }

  /**
   * Cancels a queued or running upscale: its work stops on the runner and it is refunded. Resolves
   * with the canceled job (again for a job canceled before); a job that already succeeded or failed
   * throws HvarError 409 `job_already_succeeded` or `job_already_failed`.
   */
  async cancel(id: string, options: { signal?: AbortSignal } = {}): Promise<Upscale> {
    const response = await this.#request("POST", `/v1/upscales/${encodeURIComponent(id)}/cancel`, { signal: options.signal });
    return (await response.json()) as Upscale;
  }

  /**
   * Deletes a finished upscale's results now: its signed URLs stop working, and `get` throws
   * HvarError 410 `job_deleted` afterwards. A job still running throws 409 `job_not_finished`.
   */
  async delete(id: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    const response = await this.#request("DELETE", `/v1/upscales/${encodeURIComponent(id)}`, { signal: options.signal });
    await response.body?.cancel();
  }

  /** The calling key's usage from the ledger: quota of this month and buckets by day or month. */
  async usage(query: UsageQuery = {}, options: { signal?: AbortSignal } = {}): Promise<Usage> {
    const params = new URLSearchParams(Object.entries(query).filter((entry): entry is [string, string] => typeof entry[1] === "string"));
    const search = params.toString();
    const response = await this.#request("GET", `/v1/usage${search ? `?${search}` : ""}`, { signal: options.signal });
    return (await response.json()) as Usage;
  }

  /** The model this deployment serves: version, scales, upload limits, whether a temperature draws detail and whether `cleanup` can be chosen. */
  async model(options: { signal?: AbortSignal } = {}): Promise<ServedModel> {
    const response = await this.#request("GET", "/v1/model", { signal: options.signal });
    return (await response.json()) as ServedModel;
  }

  /** Forgets every CDN variant of one source (needs a key with the `cdn` scope). */
  async purgeCdn(source: string, options: { signal?: AbortSignal } = {}): Promise<CdnPurgeResult> {
    const response = await this.#request("POST", "/v1/cdn/purge", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ source }),
      signal: options.signal,
    });
    return (await response.json()) as CdnPurgeResult;
  }

  async #poll(first: Upscale, location: string, retryAfterS: number | null, options: WaitOptions): Promise<Upscale> {
    const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    let job = first;
    let delayMs = options.pollIntervalMs ?? (retryAfterS ?? DEFAULT_POLL_MS / 1000) * 1000;
    while (!isDone(job)) {
      if (Date.now() + delayMs > deadline) throw new UpscaleTimeoutError(job);
      await sleep(delayMs, options.signal);
      const response = await this.#request("GET", location, { signal: options.signal });
      job = (await response.json()) as Upscale;
      report(job, options);
      delayMs = options.pollIntervalMs ?? (retryAfterOf(response.headers) ?? DEFAULT_POLL_MS / 1000) * 1000;
    }
    return conclude(job);
  }

  /** One API call with the key, retried as `maxRetries` says; resolves with a 2xx answer only. */
  async #request(method: "GET" | "POST" | "DELETE", path: string, init: { headers?: Record<string, string>; body?: Uint8Array<ArrayBuffer> | string; signal?: AbortSignal | undefined }): Promise<Response> {
    const url = new URL(path, `${this.baseUrl}/`);
    const headers = { accept: "application/json", ...init.headers, authorization: `Bearer ${this.#apiKey}` };
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.#fetch(url, { method, headers, body: init.body ?? null, signal: init.signal ?? null });
      } catch (error) {
        if (init.signal?.aborted || attempt >= this.#maxRetries) throw error;
        await sleep(backoffMs(attempt), init.signal);
        continue;
      }
      if (response.ok) return response;
      const error = await errorFrom(response);
      const retryable = (error.status === 429 || error.status === 503) && (error.retryAfterS ?? 0) <= MAX_RETRY_AFTER_S;
      if (!retryable || attempt >= this.#maxRetries) throw error;
      await sleep(error.retryAfterS === null ? backoffMs(attempt) : error.retryAfterS * 1000, init.signal);
    }
  }
}

/** 0.5 s, 1 s, 2 s, ... */
const backoffMs = (attempt: number) => 500 * 2 ** attempt;

function conclude(job: Upscale): Upscale {
  if (job.status === "failed") throw jobFailedError(job);
  if (job.status === "canceled") throw jobCanceledError(job);
  return job;
}

