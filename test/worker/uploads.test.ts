import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../worker/src/security/crypto";
import { HELD_UPLOAD_BYTES, PART_BYTES, UploadLengthError, readRange, streamUpload } from "../../worker/src/storage/uploads";
import { uniqueName } from "./unique";

/** `total` deterministic bytes, delivered in chunks of `chunk` bytes as a request body would be. */
function bodyOf(bytes: Uint8Array, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + chunk));
      offset += chunk;
    },
  });
}

function patterned(total: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(total);
  for (let i = 0; i < total; i++) bytes[i] = (i * 2654435761) >>> 24;
  return bytes;
}

describe("streaming an upload into R2", () => {
  it("stores a 20 MB body byte-exact, hashed right, keeping only its first bytes", async () => {
    const image = patterned(20 * 1024 * 1024);
    const key = `inputs/${uniqueName()}`;
    const stored = await streamUpload(env.RESULTS, key, bodyOf(image), image.length, { prefixBytes: 64 * 1024, contentType: "image/png" });
    expect(stored.bytes).toBe(image.length);
    expect(stored.sha256).toBe(await sha256Hex(image));
    expect(stored.prefix).toEqual(image.subarray(0, 64 * 1024));
    const object = await env.RESULTS.get(key);
    expect(object?.httpMetadata?.contentType).toBe("image/png");
    expect(await sha256Hex((await object?.arrayBuffer()) ?? new ArrayBuffer(0))).toBe(stored.sha256);
    expect(await readRange(env.RESULTS, key, 10_000_000, 16)).toEqual(image.subarray(10_000_000, 10_000_016));
  });

  it("keeps the whole body as the prefix when it is shorter", async () => {
    const image = patterned(1000);
    const stored = await streamUpload(env.RESULTS, `inputs/${uniqueName()}`, bodyOf(image, 300), image.length, { prefixBytes: 64 * 1024 });
    expect(stored.prefix).toEqual(image);
  });

  it.each([
    ["longer", HELD_UPLOAD_BYTES + 2000, HELD_UPLOAD_BYTES + 1000],
    ["shorter", HELD_UPLOAD_BYTES + 500, HELD_UPLOAD_BYTES + 1000],
    ["longer (a small body)", 2000, 1000],
    ["shorter (a small body)", 500, 1000],
  ])("stores nothing when the body is %s than declared", async (_, actual, declared) => {
    const key = `inputs/${uniqueName()}`;
    await expect(streamUpload(env.RESULTS, key, bodyOf(patterned(actual), 300), declared, { prefixBytes: 64 })).rejects.toBeInstanceOf(UploadLengthError);
    expect(await env.RESULTS.head(key)).toBeNull();
  });

  it("stores a body of unknown length in parts, byte-exact and hashed right", async () => {
    const image = patterned(2 * PART_BYTES + 12345);
    const key = `inputs/${uniqueName()}`;
    const stored = await streamUpload(env.RESULTS, key, bodyOf(image, 100_000), null, { prefixBytes: 1024, maxBytes: image.length });
    expect(stored).toMatchObject({ bytes: image.length, sha256: await sha256Hex(image) });
    const object = await env.RESULTS.get(key);
    expect(await sha256Hex((await object?.arrayBuffer()) ?? new ArrayBuffer(0))).toBe(stored.sha256);
  });

  it("stores nothing when a body of unknown length passes its cap", async () => {
    const key = `inputs/${uniqueName()}`;
    const tooLarge = () => new Error("too large");
    await expect(streamUpload(env.RESULTS, key, bodyOf(patterned(PART_BYTES + 10)), null, { prefixBytes: 64, maxBytes: PART_BYTES, tooLarge })).rejects.toThrow("too large");
    expect(await env.RESULTS.head(key)).toBeNull();
  });

  it.each([
    ["a known-length", HELD_UPLOAD_BYTES + 200_000],
    ["a small known-length", 200_000],
    ["an unknown-length", null],
  ])("stops reading %s body as soon as its first bytes are refused, and stores nothing", async (_, length) => {
    const image = patterned(length ?? 200_000);
    let pulled = 0;
    const counted = bodyOf(image, 1000).pipeThrough(new TransformStream({ transform: (chunk: Uint8Array, c) => void ((pulled += chunk.length), c.enqueue(chunk)) }));
    const key = `inputs/${uniqueName()}`;
    const refuse = () => {
      throw new Error("refused");
    };
    await expect(streamUpload(env.RESULTS, key, counted, length, { prefixBytes: 4096, maxBytes: image.length, onPrefix: refuse })).rejects.toThrow("refused");
    expect(pulled).toBeLessThan(4096 + 10 * 1000);
    expect(await env.RESULTS.head(key)).toBeNull();
  });
});

describe("a small upload of known length", () => {
  it("is held, hashed right, and written nowhere until a job needs it", async () => {
    const image = patterned(HELD_UPLOAD_BYTES);
    const key = `inputs/${uniqueName()}`;
    const held = await streamUpload(env.RESULTS, key, bodyOf(image, 4000), image.length, { prefixBytes: 1024, contentType: "image/png" });
    expect(held).toMatchObject({ key, bytes: image.length, sha256: await sha256Hex(image) });
    expect(held.prefix).toEqual(image.subarray(0, 1024));
    expect(await held.read(500_000, 16)).toEqual(image.subarray(500_000, 500_016));
    expect(await env.RESULTS.head(key)).toBeNull();
  });

  it("goes to R2 byte-exact, once, when a job is given it", async () => {
    const image = patterned(300_000);
    const key = `inputs/${uniqueName()}`;
    const held = await streamUpload(env.RESULTS, key, bodyOf(image), image.length, { prefixBytes: 1024, contentType: "image/png" });
    const [first, second] = await Promise.all([held.stored(), held.stored()]);
    expect(first).toEqual({ key, bytes: image.length, sha256: held.sha256 });
    expect(second).toEqual(first);
    const object = await env.RESULTS.get(key);
    expect(object?.httpMetadata?.contentType).toBe("image/png");
    expect(await sha256Hex((await object?.arrayBuffer()) ?? new ArrayBuffer(0))).toBe(held.sha256);
    await held.discard();
    expect(await env.RESULTS.head(key)).toBeNull();
  });

  it("is streamed into R2 at once when it is one byte larger", async () => {
    const image = patterned(HELD_UPLOAD_BYTES + 1);
    const key = `inputs/${uniqueName()}`;
    const stored = await streamUpload(env.RESULTS, key, bodyOf(image), image.length, { prefixBytes: 1024 });
    expect((await env.RESULTS.head(key))?.size).toBe(image.length);
    await stored.discard();
    expect(await env.RESULTS.head(key)).toBeNull();
  });
});
