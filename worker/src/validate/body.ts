import { z } from "@hono/zod-openapi";
import { DomainError } from "@hvar/contract";
import type { Context } from "hono";

/** Room for multipart boundaries and option fields around the image. */
const MULTIPART_OVERHEAD = 64 * 1024;
/** A JSON body holds a URL and options, never an image. */
const JSON_BODY_LIMIT = 64 * 1024;

/**
 * What a POST /v1/upscales body carries: the image's bytes (a raw body, or the `image` part of
 * multipart/form-data with option fields beside it), or a JSON object with the image's URL and
 * the options (validate/options.ts reads it).
 */
export type Upload =
  | {
      kind: "bytes";
      bytes: Uint8Array<ArrayBuffer>;
      /** Option fields of a multipart body (empty for a raw body). */
      fields: Record<string, string>;
    }
  | { kind: "url"; json: Record<string, unknown> };

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

const tooLarge = (maxBytes: number) =>
  new DomainError({ kind: "too_large", code: "payload_too_large", title: "The image is too large", detail: `The limit is ${maxBytes} bytes.` });

/**
 * Reads the body with a hard byte cap: a declared Content-Length over the cap is refused before
 * reading, and a body without one (chunked) is cut off as soon as it passes the cap.
 */
export async function readUpload(c: Context, maxBytes: number): Promise<Upload> {
  const contentType = c.req.header("content-type") ?? "";
  const kind = bodyKindOf(contentType);
  const cap = kind === "json" ? JSON_BODY_LIMIT : maxBytes + (kind === "multipart" ? MULTIPART_OVERHEAD : 0);
  const refuse = () => (kind === "json" ? new DomainError({ kind: "too_large", code: "payload_too_large", title: "The JSON body is too large", detail: `The limit is ${cap} bytes; send the image by URL.` }) : tooLarge(maxBytes));
  const declared = Number(c.req.header("content-length") ?? Number.NaN);
  if (declared > cap) throw refuse();
  const body = await readCapped(c.req.raw.body, cap, refuse);
  if (kind === "json") return { kind: "url", json: jsonObjectOf(body) };
  if (kind === "raw") {
    if (body.length === 0) throw new DomainError({ kind: "invalid_input", code: "empty_body", title: "The request has no image" });
    return { kind: "bytes", bytes: body, fields: {} };
  }
  let form: FormData;
  try {
    form = await new Response(body, { headers: { "content-type": contentType } }).formData();
  } catch {
    throw new DomainError({ kind: "invalid_input", code: "malformed_multipart", title: "The multipart body cannot be parsed" });
  }
  const fields: Record<string, string> = {};
  let image: Uint8Array<ArrayBuffer> | null = null;
  for (const [name, value] of form) {
    if (name === "image" && typeof value !== "string") image = new Uint8Array(await value.arrayBuffer());
    else if (typeof value === "string") fields[name] = value;
  }
  if (!image || image.length === 0) {
    throw new DomainError({ kind: "invalid_input", code: "empty_body", title: "The request has no image", detail: 'Send the file in a part named "image".' });
  }
  if (image.length > maxBytes) throw tooLarge(maxBytes);
  return { kind: "bytes", bytes: image, fields };
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

/** Reads a whole stream, cancelling it and throwing `tooLarge()` as soon as it passes `cap` bytes. */
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
