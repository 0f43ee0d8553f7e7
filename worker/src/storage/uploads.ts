import { inputKey } from "@hvar/contract";
import { toHex } from "../security/crypto";

/*
 * An upload streamed into R2 as it arrives, hashed on the way: the worker never holds the whole
 * image (an isolate has 128 MB; a buffered 25 MB upload cost ~97 MB, issue 16). What it keeps is the
 * first bytes, for the type sniffer (validate/sniff.ts reads headers, which are at the start for
 * most images; `readRange` serves the rest).
 *
 * A small upload of known length (at most HELD_UPLOAD_BYTES) is held in memory instead, and goes to
 * R2 only when a job is dispatched with it: a cache hit or a replay, answered from the hash alone,
 * then writes and deletes nothing (issue 19: the input's put and delete were a third of a hit's work).
 */

/** An image in R2 (inputs/<job id>), as a job's backend gets it: never its bytes. */
export interface StoredInput {
  key: string;
  /** The body's length in bytes, as stored. */
  bytes: number;
  /** sha256 of the stored bytes, lowercase hex. */
  sha256: string;
}

/** An upload as a request has it: in R2 already (streamed), or held until a job needs it there. */
export interface ReceivedInput extends StoredInput {
  /** The input in R2, put there first if it was held: what a backend is given. */
  stored(): Promise<StoredInput>;
  /** Deletes it from R2 if it is there (a cache hit, a replay, a refusal). */
  discard(): Promise<void>;
}

export interface StoredUpload extends ReceivedInput {
  /** The body's first `prefixBytes` bytes (all of it when shorter). */
  prefix: Uint8Array<ArrayBuffer>;
  /** `length` bytes from `offset` (fewer at its end). */
  read(offset: number, length: number): Promise<Uint8Array<ArrayBuffer>>;
}

/** The largest upload held in memory rather than streamed into R2 at once (see above). */
export const HELD_UPLOAD_BYTES = 1024 * 1024;

/** An input already in R2. */
export function inBucket(bucket: R2Bucket, input: StoredInput): ReceivedInput {
  const plain = { key: input.key, bytes: input.bytes, sha256: input.sha256 };
  return { ...plain, stored: async () => plain, discard: () => bucket.delete(input.key) };
}

/** An upload streamed into R2. */
function streamed(bucket: R2Bucket, input: StoredInput, prefix: Uint8Array<ArrayBuffer>): StoredUpload {
  return { ...inBucket(bucket, input), prefix, read: (offset, length) => readRange(bucket, input.key, offset, length) };
}

/** An upload held in memory, put into R2 on the first `stored()`. */
function held(bucket: R2Bucket, key: string, body: Uint8Array<ArrayBuffer>, sha256: string, prefixBytes: number, httpMetadata: R2PutOptions | undefined): StoredUpload {
  const plain = { key, bytes: body.length, sha256 };
  let put: Promise<unknown> | null = null;
  return {
    ...plain,
    prefix: body.slice(0, prefixBytes),
    stored: async () => {
      put ??= bucket.put(key, body, { ...httpMetadata, sha256 });
      await put;
      return plain;
    },
    discard: async () => {
      if (put) await bucket.delete(key);
    },
    read: async (offset, length) => body.slice(offset, offset + length),
  };
}

/** Beside a job's input: how the runner pool sends it (dispatch/runner-pool.ts), under the inputs' lifecycle rule. */
export const sendStateKey = (jobId: string) => `${inputKey(jobId)}.send`;

/** Thrown (and the object not stored) when the body is not `length` bytes long. */
export class UploadLengthError extends Error {
  constructor(readonly expected: number, readonly received: number) {
    super(`The body is ${received > expected ? "longer" : "shorter"} than its declared ${expected} bytes`);
    this.name = "UploadLengthError";
  }
}

/** R2's smallest multipart part: what an upload of unknown length holds in memory, one buffer reused for every part. */
export const PART_BYTES = 5 * 1024 * 1024;

export interface StreamUploadOptions {
  /** How many of the first bytes to keep (StoredUpload.prefix). */
  prefixBytes: number;
  contentType?: string;
  /**
   * Called once with the first `prefixBytes` bytes (all of the body when shorter) as soon as they
   * have arrived: what it throws stops the upload there, before the rest of the body is read, and
   * nothing is stored.
   */
  onPrefix?: (prefix: Uint8Array<ArrayBuffer>) => void;
  /** For a body of unknown length: the most it may hold; past it, `tooLarge()` is thrown and nothing is stored. */
  maxBytes?: number;
  tooLarge?: () => Error;
}

/**
 * Streams `body` into `bucket` under `key`, hashing it with workerd's DigestStream and keeping its
 * first `prefixBytes` bytes. With a known `length` (a request's Content-Length) the body goes to R2
 * as one stream: FixedLengthStream enforces the length, so a body that is longer or shorter than
 * declared fails the put and nothing is stored. With none (a multipart part, a chunked body, a source
 * without Content-Length) it goes as an R2 multipart upload of PART_BYTES parts, one part in memory
 * at a time.
 */
export async function streamUpload(bucket: R2Bucket, key: string, body: ReadableStream<Uint8Array>, length: number | null, options: StreamUploadOptions): Promise<StoredUpload> {
  const httpMetadata = options.contentType ? { httpMetadata: { contentType: options.contentType } } : undefined;
  if (length !== null && length <= HELD_UPLOAD_BYTES) return holdUpload(bucket, key, body, length, options, httpMetadata);
  const digest = new crypto.DigestStream("SHA-256");
  const digestWriter = digest.getWriter();
  // Read after a successful put only; a failed one aborts the digest, which rejects it.
  digest.digest.catch(() => undefined);
  const maxBytes = length ?? options.maxBytes ?? Number.POSITIVE_INFINITY;
  let prefix = new Uint8Array(Math.min(options.prefixBytes, maxBytes));
  let received = 0;
  let checked = false;
  /** What the tap threw: the put fails with a stream error, the caller gets this. */
  let failure: unknown;
  const checkPrefix = () => {
    if (checked) return;
    checked = true;
    if (received < prefix.length) prefix = prefix.slice(0, received);
    options.onPrefix?.(prefix);
  };
  const tap = new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      try {
        if (received < prefix.length) prefix.set(chunk.subarray(0, prefix.length - received), received);
        received += chunk.length;
        if (received > maxBytes) throw length === null ? (options.tooLarge?.() ?? new UploadLengthError(maxBytes, received)) : new UploadLengthError(length, received);
        if (received >= prefix.length) checkPrefix();
      } catch (error) {
        failure = error;
        throw error;
      }
      // The digest gets its own copy: R2 may take ownership of the chunk's buffer.
      await digestWriter.write(chunk.slice());
      controller.enqueue(chunk);
    },
    flush() {
      try {
        checkPrefix();
        if (length !== null && received !== length) throw new UploadLengthError(length, received);
      } catch (error) {
        failure = error;
        throw error;
      }
    },
  });
  try {
    if (length === null) await putUnsized(bucket, key, body.pipeThrough(tap), httpMetadata);
    else await bucket.put(key, body.pipeThrough(tap).pipeThrough(new FixedLengthStream(length)), httpMetadata);
  } catch (error) {
    await digestWriter.abort(error).catch(() => undefined);
    if (failure !== undefined) throw failure;
    if (length !== null && received !== length) throw new UploadLengthError(length, received);
    throw error;
  }
  await digestWriter.close();
  return streamed(bucket, { key, bytes: received, sha256: toHex(new Uint8Array(await digest.digest)) }, prefix);
}

/** A body of known, small `length`, read into memory with the same checks as a streamed one. */
async function holdUpload(bucket: R2Bucket, key: string, body: ReadableStream<Uint8Array>, length: number, options: StreamUploadOptions, httpMetadata: R2PutOptions | undefined): Promise<StoredUpload> {
  const bytes = new Uint8Array(length);
  let received = 0;
  let checked = false;
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (received + value.length > length) throw new UploadLengthError(length, received + value.length);
      bytes.set(value, received);
      received += value.length;
      if (!checked && received >= Math.min(options.prefixBytes, length)) {
        checked = true;
        options.onPrefix?.(bytes.slice(0, Math.min(options.prefixBytes, received)));
      }
    }
  } catch (error) {
    await reader.cancel(error).catch(() => undefined);
    throw error;
  }
  if (received !== length) throw new UploadLengthError(length, received);
  if (!checked) options.onPrefix?.(bytes.slice(0, Math.min(options.prefixBytes, received)));
  const sha256 = toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
  return held(bucket, key, bytes, sha256, options.prefixBytes, httpMetadata);
}

/** A stream of unknown length into R2: one put when it fits in a part, else a multipart upload (aborted on any failure). */
async function putUnsized(bucket: R2Bucket, key: string, stream: ReadableStream<Uint8Array>, options: R2PutOptions | undefined): Promise<void> {
  const reader = stream.getReader();
  const part = new Uint8Array(PART_BYTES);
  let filled = 0;
  let upload: R2MultipartUpload | null = null;
  const parts: R2UploadedPart[] = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (let chunk = value; chunk.length > 0; ) {
        const taken = Math.min(chunk.length, PART_BYTES - filled);
        part.set(chunk.subarray(0, taken), filled);
        filled += taken;
        chunk = chunk.subarray(taken);
        if (filled === PART_BYTES) {
          upload ??= await bucket.createMultipartUpload(key, options);
          // The part's buffer is R2's until the upload of it resolves, then this upload's again.
          parts.push(await upload.uploadPart(parts.length + 1, part));
          filled = 0;
        }
      }
    }
    if (!upload) {
      await bucket.put(key, part.subarray(0, filled), options);
      return;
    }
    if (filled > 0) parts.push(await upload.uploadPart(parts.length + 1, part.subarray(0, filled)));
    await upload.complete(parts);
  } catch (error) {
    await reader.cancel(error).catch(() => undefined);
    await upload?.abort().catch(() => undefined);
    throw error;
  }
}

/** `length` bytes of a stored upload from `offset` (fewer at its end); empty when the object is gone. */
export async function readRange(bucket: R2Bucket, key: string, offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> {
  const object = await bucket.get(key, { range: { offset, length } });
  if (!object) return new Uint8Array();
  return new Uint8Array(await object.arrayBuffer());
}
