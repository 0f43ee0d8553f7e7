/**
 * How the worker signs its requests to a runner and the runner verifies them (gpu-runner/API.md,
 * "Authentication"): HMAC-SHA256 with RUNNER_HMAC_SECRET over the string below, hex-encoded, sent as
 * `X-Hvar-Signature: v1=<hex>` beside `X-Hvar-Timestamp: <unix seconds>`. Each side hashes and signs
 * with its own runtime's crypto (Web Crypto in the worker, node:crypto in the runner); this module
 * holds what they must agree on, so it needs neither.
 */

export const TIMESTAMP_HEADER = "X-Hvar-Timestamp";
export const SIGNATURE_HEADER = "X-Hvar-Signature";

/** The worker's clock and the runner's may differ by this much; older signatures are replays. */
export const REPLAY_WINDOW_S = 300;

export interface RunnerRequest {
  method: string;
  /** The path with its query string, exactly as sent (`/v1/jobs?id=...`). */
  pathAndQuery: string;
  /** Unix seconds, as the decimal text of the header. */
  timestamp: string;
  /** Lower-case hex SHA-256 of the body (of no bytes for a GET). */
  bodySha256: string;
}

/** The string both sides sign. */
export function signingInput({ method, pathAndQuery, timestamp, bodySha256 }: RunnerRequest): string {
  return `${method.toUpperCase()}\n${pathAndQuery}\n${timestamp}\n${bodySha256}`;
}

/** The signature header's value for an HMAC in hex. */
export const signatureHeader = (hmacHex: string) => `v1=${hmacHex}`;

/** The HMAC in a signature header's value (hex), or undefined when the value is not a v1 signature. */
export function signatureOf(header: string | undefined): string | undefined {
  return /^v1=([0-9a-f]{64})$/.exec(header ?? "")?.[1];
}

/** The timestamp header's value as unix seconds, or undefined when it is not one. */
export function timestampOf(header: string | undefined): number | undefined {
  return header !== undefined && /^\d{1,12}$/.test(header) ? Number(header) : undefined;
}
