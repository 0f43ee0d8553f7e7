import { SIGNATURE_HEADER, TIMESTAMP_HEADER, signatureHeader, signingInput } from "@hvar/contract";
import { hmacSha256, sha256Hex, toHex } from "./crypto";

/**
 * Requests to runners are signed with RUNNER_HMAC_SECRET (gpu-runner/API.md, "Authentication"):
 * an HMAC-SHA256 over packages/contract's signing input, beside the timestamp it names. The runner
 * refuses a wrong signature or a stale timestamp.
 */
export async function signRunnerRequest(secret: string, method: string, pathAndQuery: string, body: Uint8Array, now = Date.now()): Promise<Record<string, string>> {
  const timestamp = String(Math.floor(now / 1000));
  const hmac = await hmacSha256(secret, signingInput({ method, pathAndQuery, timestamp, bodySha256: await sha256Hex(body) }));
  return { [TIMESTAMP_HEADER]: timestamp, [SIGNATURE_HEADER]: signatureHeader(toHex(hmac)) };
}
