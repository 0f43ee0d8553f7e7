import { toHex } from "../security/crypto";

/**
 * An upload streamed into R2 as it arrives, hashed on the way: the worker never holds the whole
 * image (an isolate has 128 MB; a buffered 25 MB upload cost ~97 MB, issue 16). What it keeps is the
 * first bytes, for the type sniffer (validate/sniff.ts reads headers, which are at the start for
 * most images; `readRange` serves the rest).
 */
export interface StoredUpload {
  key: string;
  /** The body's length in bytes, as stored. */
  bytes: number;
  /** sha256 of the stored bytes, lowercase hex. */
  sha256: string;
  /** The body's first `prefixBytes` bytes (all of it when shorter). */
  prefix: Uint8Array<ArrayBuffer>;
}

/** Thrown (and the object not stored) when the body is not `length` bytes long. */
export class UploadLengthError extends Error {
  constructor(readonly expected: number, readonly received: number) {
    super(`The body is ${received > expected ? "longer" : "shorter"} than its declared ${expected} bytes`);
    this.name = "UploadLengthError";
  }
}

/**
 * Streams `body`, declared `length` bytes long (a request's Content-Length), into `bucket` under
 * `key`, hashing it with workerd's DigestStream and keeping its first `prefixBytes` bytes. R2 needs
 * the length up front; FixedLengthStream enforces it, so a body that is longer or shorter than
 * declared fails the put and nothing is stored.
 */
export async function streamUpload(
  bucket: R2Bucket,
  key: string,
  body: ReadableStream<Uint8Array>,
  length: number,
  options: { prefixBytes: number; contentType?: string },
): Promise<StoredUpload> {
  const digest = new crypto.DigestStream("SHA-256");
  const digestWriter = digest.getWriter();
  // Read after a successful put only; a failed one aborts the digest, which rejects it.
  digest.digest.catch(() => undefined);
  const prefix = new Uint8Array(Math.min(options.prefixBytes, length));
  let received = 0;
  const tap = new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      if (received < prefix.length) prefix.set(chunk.subarray(0, prefix.length - received), received);
      received += chunk.length;
      if (received > length) throw new UploadLengthError(length, received);
      // The digest gets its own copy: R2 may take ownership of the chunk's buffer.
      await digestWriter.write(chunk.slice());
      controller.enqueue(chunk);
    },
    flush() {
      if (received !== length) throw new UploadLengthError(length, received);
    },
  });
  const sized = new FixedLengthStream(length);
  try {
    await bucket.put(key, body.pipeThrough(tap).pipeThrough(sized), options.contentType ? { httpMetadata: { contentType: options.contentType } } : undefined);
  } catch (error) {
    await digestWriter.abort(error).catch(() => undefined);
    if (received !== length) throw new UploadLengthError(length, received);
    throw error;
  }
  await digestWriter.close();
  return { key, bytes: length, sha256: toHex(new Uint8Array(await digest.digest)), prefix };
}

/** `length` bytes of a stored upload from `offset` (fewer at its end); empty when the object is gone. */
export async function readRange(bucket: R2Bucket, key: string, offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> {
  const object = await bucket.get(key, { range: { offset, length } });
  if (!object) return new Uint8Array();
  return new Uint8Array(await object.arrayBuffer());
}
