import { createHash, createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { LocalStore } from "../../gpu-runner/src/storage/local";
import { S3Store } from "../../gpu-runner/src/storage/s3";
import { tempDir } from "./helpers";

const credentials = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };
const options = { endpoint: "https://acc0unt.r2.cloudflarestorage.com", bucket: "hvar-results", region: "auto", ...credentials };

const sha256 = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();

/** Recomputes AWS Signature V4 from the request alone, independently of the client library. */
async function expectValidSigV4(request: Request, body: Uint8Array | undefined) {
  const auth = request.headers.get("authorization") ?? "";
  const match = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(auth);
  expect(match, auth).not.toBeNull();
  const [, keyId, date, region, service, signedHeaders, signature] = match as unknown as string[];
  expect([keyId, region, service]).toEqual([credentials.accessKeyId, "auto", "s3"]);
  const payloadHash = request.headers.get("x-amz-content-sha256") as string;
  expect(payloadHash).toBe(sha256(body ?? ""));
  const url = new URL(request.url);
  const names = (signedHeaders as string).split(";");
  expect(names).toContain("host");
  const canonicalHeaders = names.map((n) => `${n}:${n === "host" ? url.host : (request.headers.get(n) ?? "").trim()}\n`).join("");
  const canonical = [request.method, url.pathname, url.search.slice(1), canonicalHeaders, signedHeaders, payloadHash].join("\n");
  const amzDate = request.headers.get("x-amz-date") as string;
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join("\n");
  let key = hmac(`AWS4${credentials.secretAccessKey}`, date as string);
  for (const part of [region, service, "aws4_request"]) key = hmac(key, part as string);
  expect(createHmac("sha256", key).update(toSign).digest("hex")).toBe(signature);
}

describe("S3Store (R2's S3 API)", () => {
  it("PUTs a correctly signed, path-style request with the content type and the sha256 as metadata", async () => {
    const requests: Request[] = [];
    const store = new S3Store(options, async (input) => {
      requests.push(input as Request);
      return new Response(null, { status: 200 });
    });
    const bytes = new TextEncoder().encode("png bytes");
    await store.put("results/j_1/x2.png", bytes, "image/png");
    const [request] = requests as [Request];
    expect(request.method).toBe("PUT");
    expect(request.url).toBe("https://acc0unt.r2.cloudflarestorage.com/hvar-results/results/j_1/x2.png");
    expect(request.headers.get("content-type")).toBe("image/png");
    // R2 keeps it as customMetadata.sha256, which the worker checks outputs against.
    expect(request.headers.get("x-amz-meta-sha256")).toBe(sha256(bytes));
    expect(new Uint8Array(await request.clone().arrayBuffer())).toEqual(bytes);
    await expectValidSigV4(request, bytes);
  });

  it("GETs with a valid signature and returns bytes and content type", async () => {
    const requests: Request[] = [];
    const store = new S3Store(options, async (input) => {
      requests.push(input as Request);
      return new Response("stored", { headers: { "content-type": "application/json" } });
    });
    const object = await store.get("jobs/j_1.json");
    expect(object?.bytes.toString()).toBe("stored");
    expect(object?.contentType).toBe("application/json");
    await expectValidSigV4(requests[0] as Request, undefined);
  });

  it("reads a 404 as a missing object and any other failure as an error", async () => {
    expect(await new S3Store(options, async () => new Response("NoSuchKey", { status: 404 })).get("jobs/x.json")).toBeUndefined();
    await expect(new S3Store(options, async () => new Response("SlowDown", { status: 503 })).put("a/b", new Uint8Array(1), "x/y")).rejects.toThrow(/503/);
  });

  it("DELETEs with a valid signature, a missing key being no error", async () => {
    const requests: Request[] = [];
    const store = new S3Store(options, async (input) => {
      requests.push(input as Request);
      return new Response(null, { status: requests.length === 1 ? 204 : 404 });
    });
    await store.delete("jobs/j_1.cancel");
    await store.delete("jobs/j_1.cancel");
    expect(requests.map((r) => [r.method, r.url])).toEqual([
      ["DELETE", "https://acc0unt.r2.cloudflarestorage.com/hvar-results/jobs/j_1.cancel"],
      ["DELETE", "https://acc0unt.r2.cloudflarestorage.com/hvar-results/jobs/j_1.cancel"],
    ]);
    await expectValidSigV4(requests[0] as Request, undefined);
    await expect(new S3Store(options, async () => new Response("AccessDenied", { status: 403 })).delete("a/b")).rejects.toThrow(/403/);
  });

  it("refuses keys that could escape their prefix", async () => {
    const store = new S3Store(options, async () => new Response(null));
    await expect(store.get("../secrets")).rejects.toThrow(/unsafe/);
  });
});

describe("LocalStore", () => {
  it("returns what was put, with its content type, from a fresh instance on the same folder", async () => {
    const root = await tempDir("hvar-store-");
    await new LocalStore(root).put("results/j_1/x4.webp", Buffer.from("webp"), "image/webp");
    const object = await new LocalStore(root).get("results/j_1/x4.webp");
    expect(object?.bytes.toString()).toBe("webp");
    expect(object?.contentType).toBe("image/webp");
  });

  it("answers undefined for a missing key", async () => {
    expect(await new LocalStore(await tempDir("hvar-store-")).get("nothing/here")).toBeUndefined();
  });

  it("deletes an object and its content type, a missing key being no error", async () => {
    const store = new LocalStore(await tempDir("hvar-store-"));
    await store.put("jobs/j_1.cancel", Buffer.from(""), "text/plain");
    await store.delete("jobs/j_1.cancel");
    expect(await store.get("jobs/j_1.cancel")).toBeUndefined();
    await expect(store.delete("jobs/j_1.cancel")).resolves.toBeUndefined();
  });

  it("refuses path traversal", async () => {
    const store = new LocalStore(await tempDir("hvar-store-"));
    await expect(store.put("results/../../etc/passwd", Buffer.from("x"), "text/plain")).rejects.toThrow(/unsafe/);
    await expect(store.get("/etc/passwd")).rejects.toThrow(/unsafe/);
  });
});
