import { SIGNATURE_HEADER, TIMESTAMP_HEADER, signatureHeader, signingInput } from "@hvar/contract";
import { hmacSha256, sha256Hex, toHex } from "./crypto";

/**
 * Requests to runners are signed with RUNNER_HMAC_SECRET (gpu-runner/API.md, "Authentication"):
 * an HMAC-SHA256 over packages/contract's signing input, beside the timestamp it names. The runner
 * refuses a wrong signature or a stale timestamp. A body streamed from R2 is signed by the sha256
 * it was stored with (storage/uploads.ts), so that it need not be read into memory first.
 */
export async function signRunnerRequest(secret: string, method: string, pathAndQuery: string, body: Uint8Array | { sha256: string }, now = Date.now()): Promise<Record<string, string>> {
  const timestamp = String(Math.floor(now / 1000));
  const bodySha256 = body instanceof Uint8Array ? await sha256Hex(body) : body.sha256;
  const hmac = await hmacSha256(secret, signingInput({ method, pathAndQuery, timestamp, bodySha256 }));
  return { [TIMESTAMP_HEADER]: timestamp, [SIGNATURE_HEADER]: signatureHeader(toHex(hmac)) };
}
