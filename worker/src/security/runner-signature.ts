import { hmacSha256, sha256Hex, toHex } from "./crypto";

/**
 * Requests to runners are signed with RUNNER_HMAC_SECRET (gpu-runner/API.md): x-hvar-timestamp
 * and x-hvar-signature = "v1=" + hex(HMAC-SHA256(secret, method \n path and query \n timestamp \n
 * sha256 hex of the body)). The runner refuses a wrong signature or a stale timestamp.
 */
export async function signRunnerRequest(secret: string, method: string, pathAndQuery: string, body: Uint8Array, now = Date.now()): Promise<Record<string, string>> {
  const timestamp = String(Math.floor(now / 1000));
  const message = `${method}\n${pathAndQuery}\n${timestamp}\n${await sha256Hex(body)}`;
  return { "x-hvar-timestamp": timestamp, "x-hvar-signature": `v1=${toHex(await hmacSha256(secret, message))}` };
}
