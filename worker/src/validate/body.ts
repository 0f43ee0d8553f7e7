import { DomainError } from "@hvar/contract";
import type { Context } from "hono";

/** Room for multipart boundaries and option fields around the image. */
const MULTIPART_OVERHEAD = 64 * 1024;

export interface Upload {
  bytes: Uint8Array<ArrayBuffer>;
  /** Option fields of a multipart body (empty for a raw body). */
  fields: Record<string, string>;
}

const tooLarge = (maxBytes: number) =>
  new DomainError({ kind: "too_large", code: "payload_too_large", title: "The image is too large", detail: `The limit is ${maxBytes} bytes.` });

/**
 * Reads the upload with a hard byte cap: a declared Content-Length over the cap is refused before
 * reading, and a body without one (chunked) is cut off as soon as it passes the cap.
 * The image is the raw body, or the `image` part of multipart/form-data with options beside it.
 */
export async function readUpload(c: Context, maxBytes: number): Promise<Upload> {
  const contentType = c.req.header("content-type") ?? "";
  const multipart = contentType.toLowerCase().startsWith("multipart/form-data");
  const cap = maxBytes + (multipart ? MULTIPART_OVERHEAD : 0);
  const declared = Number(c.req.header("content-length") ?? Number.NaN);
  if (declared > cap) throw tooLarge(maxBytes);
  const body = await readCapped(c.req.raw.body, cap, () => tooLarge(maxBytes));
  if (!multipart) {
    if (body.length === 0) throw new DomainError({ kind: "invalid_input", code: "empty_body", title: "The request has no image" });
    return { bytes: body, fields: {} };
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
  return { bytes: image, fields };
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
