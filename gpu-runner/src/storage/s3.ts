import { createHash } from "node:crypto";
import { AwsClient } from "aws4fetch";
import { z } from "zod";
import { assertSafeKey, type ObjectStore, type StoredObject } from "./store";

export const S3StoreOptionsSchema = z.object({
  /** e.g. `https://<account>.r2.cloudflarestorage.com` for R2's S3 API. */
  endpoint: z.url(),
  bucket: z.string().min(3),
  /** R2 takes `auto`. */
  region: z.string().min(1),
  accessKeyId: z.string().min(1),
  secretAccessKey: z.string().min(1),
});
export type S3StoreOptions = z.infer<typeof S3StoreOptionsSchema>;

/**
 * An S3-compatible bucket (Cloudflare R2 in production) through SigV4-signed fetches (aws4fetch):
 * path-style URLs, which R2 and MinIO both accept. `fetch` is injectable so tests can inspect the
 * exact signed requests.
 */
export class S3Store implements ObjectStore {
  private readonly client: AwsClient;
  private readonly base: string;

  constructor(
    options: S3StoreOptions,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {
    const { endpoint, bucket, region, accessKeyId, secretAccessKey } = S3StoreOptionsSchema.parse(options);
    this.client = new AwsClient({ accessKeyId, secretAccessKey, region, service: "s3" });
    this.base = `${endpoint.replace(/\/+$/, "")}/${encodeURIComponent(bucket)}`;
  }

  async put(key: string, bytes: Uint8Array, contentType: string): Promise<void> {
    const hash = sha256Hex(bytes);
    const request = await this.client.sign(this.url(key), {
      method: "PUT",
      body: bytes,
      // A signed payload hash (not aws4fetch's UNSIGNED-PAYLOAD default for S3) lets the bucket
      // refuse a body corrupted in transit.
      // x-amz-meta-sha256 is the object's R2 customMetadata.sha256, by which the worker's queue
      // backend accepts an output a runner stored (worker/src/dispatch/queue.ts).
      headers: { "content-type": contentType, "content-length": String(bytes.length), "x-amz-content-sha256": hash, "x-amz-meta-sha256": hash },
    });
    const response = await this.fetchImpl(request);
    if (!response.ok) throw new Error(`S3 PUT ${key} failed: ${response.status} ${await response.text()}`);
  }

  async get(key: string): Promise<StoredObject | undefined> {
    const response = await this.fetchImpl(await this.client.sign(this.url(key), { method: "GET", headers: { "x-amz-content-sha256": sha256Hex(new Uint8Array()) } }));
    if (response.status === 404) return undefined;
    if (!response.ok) throw new Error(`S3 GET ${key} failed: ${response.status} ${await response.text()}`);
    return { bytes: Buffer.from(await response.arrayBuffer()), contentType: response.headers.get("content-type") ?? "application/octet-stream" };
  }

  async delete(key: string): Promise<void> {
    const response = await this.fetchImpl(await this.client.sign(this.url(key), { method: "DELETE", headers: { "x-amz-content-sha256": sha256Hex(new Uint8Array()) } }));
    // S3 answers 204 whether or not the key existed; some compatible stores answer 404 for a missing one.
    if (!response.ok && response.status !== 404) throw new Error(`S3 DELETE ${key} failed: ${response.status} ${await response.text()}`);
    await response.body?.cancel();
  }

  private url(key: string): string {
    assertSafeKey(key);
    return `${this.base}/${key.split("/").map(encodeURIComponent).join("/")}`;
  }
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
