import { z } from "@hono/zod-openapi";
import { DomainError, SCALES, scaleListSchema } from "@hvar/contract";
import type { Context } from "hono";
import * as Multipart from "multipasta";
import { type ReceivedInput, UploadLengthError, streamUpload } from "../storage/uploads";
import { type EdgeLimits, checkLimits, checkPixels } from "./limits";
import { type UpscaleParams, parseUpscaleParams } from "./options";
import { type ImageInfo, type SizeHook, sniffPrefix, sniffStored } from "./sniff";

/** Room for multipart boundaries and option fields around the image. */
const MULTIPART_OVERHEAD = 64 * 1024;
/** A JSON body holds a URL and options, never an image. */
const JSON_BODY_LIMIT = 64 * 1024;
/** Option fields of a multipart body: a few, each short. */
const MAX_PARTS = 32;
const MAX_FIELD_BYTES = 4 * 1024;
/**
 * The first bytes of an image, kept while it streams into R2: the sniffer reads the size from them
 * (and refuses a too-large image before the rest arrives); where it lies deeper, it reads ranges of
 * the stored object.
 */
export const SNIFF_PREFIX_BYTES = 64 * 1024;

/**
 * What a POST /v1/upscales body carries: an image (a raw body, or the `image` part of
 * multipart/form-data with option fields beside it), streamed into R2 as it arrives and never held
 * whole in memory (an isolate has 128 MB), or a JSON object with the image's URL and the options
 * (validate/options.ts reads it).
 */
export type Upload = { kind: "stored"; params: UpscaleParams; image: ImageInfo; input: ReceivedInput } | { kind: "url"; json: Record<string, unknown> };

/** An image streamed into R2 (or held, when small: storage/uploads.ts), with the type and size read from its bytes. */
export type StoredImage = { image: ImageInfo; input: ReceivedInput };

/** Where an uploaded image goes (inputs/<job id>), and the limits it must keep. */
export interface UploadTarget {
  bucket: R2Bucket;
  key: string;
  limits: EdgeLimits;
}

/**
 * The Content-Types of a body, by how it is read. Anything else is refused (415) before the body is
 * read: a raw body is any image type or octet-stream, or none at all, or form-urlencoded, which is
 * what `curl --data-binary @photo.jpg` sends when not told otherwise (the image's type is read from
 * its bytes in every case).
 */
const RAW_TYPES = ["", "application/octet-stream", "application/x-www-form-urlencoded"];
export const ACCEPTED_BODIES = "an image (image/* or application/octet-stream), multipart/form-data with an `image` part, or application/json with an image URL";

type BodyKind = "raw" | "multipart" | "json";

function bodyKindOf(contentType: string): BodyKind {
  const type = (contentType.split(";")[0] ?? "").trim().toLowerCase();
  if (type === "multipart/form-data") return "multipart";
  if (type === "application/json" || /^application\/[\w.+-]+\+json$/.test(type)) return "json";
  if (type.startsWith("image/") || RAW_TYPES.includes(type)) return "raw";
  throw new DomainError({
    kind: "unsupported_type",
    code: "unsupported_content_type",
    title: "This Content-Type is not accepted",
    detail: `${type} is none of: ${ACCEPTED_BODIES}.`,
  });
}

const tooLarge = (maxBytes: number) => () =>
  new DomainError({ kind: "too_large", code: "payload_too_large", title: "The image is too large", detail: `The limit is ${maxBytes} bytes.` });

const noImage = (detail?: string) => new DomainError({ kind: "invalid_input", code: "empty_body", title: "The request has no image", ...(detail === undefined ? {} : { detail }) });

const malformedMultipart = () => new DomainError({ kind: "invalid_input", code: "malformed_multipart", title: "The multipart body cannot be parsed" });

/**
 * Reads the body with hard caps: a declared Content-Length over the cap is refused before reading,
 * a body without one (chunked, or the image part of a multipart body) is cut off as soon as it passes
 * the cap, and an image whose first bytes show it too large for the limits is refused there, before
 * the rest of the body is read and before anything is billed.
 */
export async function readUpload(c: Context, target: UploadTarget): Promise<Upload> {
  const contentType = c.req.header("content-type") ?? "";
  const kind = bodyKindOf(contentType);
  const { maxBytes } = target.limits;
  const cap = kind === "json" ? JSON_BODY_LIMIT : maxBytes + (kind === "multipart" ? MULTIPART_OVERHEAD : 0);
  const refuse = kind === "json" ? () => new DomainError({ kind: "too_large", code: "payload_too_large", title: "The JSON body is too large", detail: `The limit is ${cap} bytes; send the image by URL.` }) : tooLarge(maxBytes);
  const header = c.req.header("content-length");
  const declared = header === undefined ? null : Number(header);
  if (declared !== null && declared > cap) throw refuse();
  const query = c.req.query();
  const body = c.req.raw.body;
  if (kind === "json") return { kind: "url", json: jsonObjectOf(await readCapped(body, cap, refuse)) };
  if (kind === "raw") {
    // The options first: a request they refuse costs no upload.
    const params = parseUpscaleParams(query);
    if (!body || declared === 0) throw noImage();
    const stored = await storeImage(target, body, declared !== null && Number.isInteger(declared) ? declared : null, params.scales);
    return accept(target, stored, params);
  }
  if (!body) throw noImage('Send the file in a part named "image".');
  const { fields, image } = await readMultipart(body, contentType, cap, (stream, before) => {
    const merged = { ...query, ...before };
    // The scales may come after the image: until then the image is held to the most a scale allows.
    const scales = "scales" in merged ? (scaleListSchema.safeParse(merged.scales).data ?? SCALES) : SCALES;
    return storeImage(target, stream, null, scales);
  }, (stored) => stored.input.discard());
  if (!image) throw noImage('Send the file in a part named "image".');
  let params: UpscaleParams;
  try {
    params = parseUpscaleParams({ ...query, ...fields });
  } catch (error) {
    await image.input.discard();
    throw error;
  }
  return accept(target, image, params);
}

/** The stored image, once the options and the limits (on its exact, decoded size) accept it; deleted otherwise. */
async function accept(target: UploadTarget, stored: StoredImage, params: UpscaleParams): Promise<Upload> {
  try {
    checkLimits(stored.image, params.scales, target.limits);
  } catch (error) {
    await stored.input.discard();
    throw error;
  }
  return { kind: "stored", params, ...stored };
}

/**
 * Streams an image into R2 (storage/uploads.ts) and reads its type and size: refused on its first
 * bytes when they show it larger than `scales` allow, then read exactly from the stored object.
 * Nothing is kept when it is refused.
 */
export async function storeImage(
  target: UploadTarget,
  body: ReadableStream<Uint8Array>,
  length: number | null,
  scales: readonly number[],
  errors: { tooLarge?: () => Error; empty?: () => Error } = {},
): Promise<StoredImage> {
  const { bucket, key, limits } = target;
  const hook: SizeHook = (size) => checkPixels(size, scales, limits);
  const stored = await streamUpload(bucket, key, body, length, {
    prefixBytes: SNIFF_PREFIX_BYTES,
    maxBytes: limits.maxBytes,
    tooLarge: errors.tooLarge ?? tooLarge(limits.maxBytes),
    onPrefix: (prefix) => void sniffPrefix(prefix, hook),
  }).catch((error: unknown) => {
    if (!(error instanceof UploadLengthError)) throw error;
    throw new DomainError({ kind: "invalid_input", code: "malformed_body", title: "The body is not as long as its Content-Length", detail: error.message });
  });
  try {
    if (stored.bytes === 0) throw (errors.empty ?? noImage)();
    const image = await sniffStored({ length: stored.bytes, prefix: stored.prefix, read: stored.read });
    return { image, input: { key: stored.key, bytes: stored.bytes, sha256: stored.sha256, stored: stored.stored, discard: stored.discard } };
  } catch (error) {
    await stored.discard();
    throw error;
  }
}

/**
 * A multipart body, parsed as it streams (multipasta): option fields are collected, and the first
 * part named `image` goes to `onImage` as a stream, read no faster than `onImage` consumes it, so
 * that no more than a chunk or two of it is ever in memory. Other file parts are skipped.
 */
async function readMultipart(
  body: ReadableStream<Uint8Array>,
  contentType: string,
  cap: number,
  onImage: (stream: ReadableStream<Uint8Array>, fieldsBefore: Record<string, string>) => Promise<StoredImage>,
  discard: (stored: StoredImage) => Promise<void>,
): Promise<{ fields: Record<string, string>; image: StoredImage | null }> {
  const fields: Record<string, string> = {};
  // Set from the parser's callbacks.
  const state: {
    image: Promise<StoredImage> | null;
    sink: ReadableStreamDefaultController<Uint8Array> | null;
    wanted: (() => void) | null;
    stopped: boolean;
    failure: Multipart.MultipartError | null;
  } = { image: null, sink: null, wanted: null, stopped: false, failure: null };
  const parser = Multipart.make({
    headers: { "content-type": contentType },
    maxParts: MAX_PARTS,
    maxFieldSize: MAX_FIELD_BYTES,
    maxTotalSize: cap,
    isFile: (info) => info.name === "image" || info.filename !== undefined,
    onField: (info, value) => {
      fields[info.name] = Multipart.decodeField(info, value);
    },
    onFile: (info) => {
      if (info.name !== "image" || state.image) return () => undefined;
      const stream = new ReadableStream<Uint8Array>(
        {
          start: (controller) => void (state.sink = controller),
          pull: () => state.wanted?.(),
          cancel: () => {
            state.stopped = true;
            state.sink = null;
            state.wanted?.();
          },
        },
        { highWaterMark: 0 },
      );
      state.image = onImage(stream, { ...fields });
      // Awaited below; a rejection before then is not unhandled.
      state.image.catch(() => undefined);
      return (chunk) => {
        if (chunk === null) {
          state.sink?.close();
          state.sink = null;
        } else {
          state.sink?.enqueue(chunk);
        }
      };
    },
    onError: (error) => {
      state.failure ??= error;
    },
    onDone: () => undefined,
  });

  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      parser.end();
      break;
    }
    parser.write(value);
    if (state.failure || state.stopped) break;
    // Backpressure: the next chunk is read only once the image's consumer has taken this one.
    while (state.sink && (state.sink.desiredSize ?? 0) < 0 && !state.stopped) await new Promise<void>((resolve) => (state.wanted = resolve));
    state.wanted = null;
    if (state.stopped) break;
  }
  if (state.failure || state.stopped) await reader.cancel().catch(() => undefined);
  const failure = state.failure;
  if (failure) {
    const problem = failure._tag === "ReachedLimit" && failure.limit === "MaxTotalSize" ? tooLarge(cap - MULTIPART_OVERHEAD)() : malformedMultipart();
    state.sink?.error(problem);
    // An image stored before the body turned out malformed is not kept.
    const stored = await state.image?.catch(() => null);
    if (stored) await discard(stored);
    throw problem;
  }
  return { fields, image: state.image === null ? null : await state.image };
}

function jsonObjectOf(body: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new DomainError({ kind: "invalid_input", code: "malformed_json", title: "The JSON body cannot be parsed" });
  }
  const object = z.record(z.string(), z.unknown()).safeParse(value);
  if (!object.success) {
    throw new DomainError({ kind: "invalid_input", code: "malformed_json", title: "The JSON body is not an object", detail: 'Send {"image": "https://..."} with the options beside it.' });
  }
  return object.data;
}

/** Reads a whole (small) stream, cancelling it and throwing `tooLarge()` as soon as it passes `cap` bytes. */
export async function readCapped(stream: ReadableStream<Uint8Array> | null, cap: number, tooLarge: () => Error): Promise<Uint8Array<ArrayBuffer>> {
  if (!stream) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > cap) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}
