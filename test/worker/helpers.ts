import { SELF, env } from "cloudflare:test";
import { inputKey } from "@hvar/contract";
import { expect } from "vitest";
import type { IssuedKey, KeySettings } from "../../worker/src/auth/keys";
import type { DispatchJob } from "../../worker/src/dispatch/types";
import { configOf } from "../../worker/src/config";
import { sweepExpired } from "../../worker/src/jobs/retention";
import { sha256Hex } from "../../worker/src/security/crypto";

export const BASE = "https://hvar.test";
export const ADMIN_SECRET = "test-admin-secret";

export function admin(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${ADMIN_SECRET}`);
  if (init.body) headers.set("content-type", "application/json");
  return SELF.fetch(`${BASE}${path}`, { ...init, headers });
}

export async function newKey(settings: Partial<KeySettings> = {}): Promise<IssuedKey> {
  const response = await admin("/admin/keys", {
    method: "POST",
    body: JSON.stringify({ owner: "acme", monthlyQuotaMp: 1000, rateLimitPerMin: 1000, ...settings }),
  });
  if (response.status !== 201) throw new Error(`creating a key: ${response.status} ${await response.text()}`);
  return response.json();
}

export function withKey(secret: string, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${secret}`);
  return SELF.fetch(`${BASE}${path}`, { ...init, headers });
}

export interface UpscaleOptions {
  query?: string;
  headers?: Record<string, string>;
}

/** POST /v1/upscales with a raw body; waits for the result unless told otherwise. */
export function upscale(secret: string, image: Uint8Array, options: UpscaleOptions = {}): Promise<Response> {
  const headers = { "content-type": "image/png", prefer: "wait=10", ...options.headers };
  return withKey(secret, `/v1/upscales${options.query ? `?${options.query}` : ""}`, { method: "POST", body: image, headers });
}

export async function jobCount(keyId: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM jobs WHERE key_id = ?").bind(keyId).first<{ n: number }>();
  return row?.n ?? 0;
}

export async function ledgerOf(keyId: string): Promise<{ job_id: string; input_mp: number; cache_hit: number }[]> {
  const { results } = await env.DB.prepare("SELECT job_id, input_mp, cache_hit FROM usage_ledger WHERE key_id = ? ORDER BY id")
    .bind(keyId)
    .all<{ job_id: string; input_mp: number; cache_hit: number }>();
  return results;
}

export function meterOf(keyId: string) {
  return env.KEY_METER.get(env.KEY_METER.idFromName(keyId));
}

/** The bytes the stub runner returns for one output (see setup/runner-stub.ts). */
export function stubOutput(input: Uint8Array, jobId: string, scale: number): Uint8Array {
  const prefix = new TextEncoder().encode(`${jobId}/x${scale}:`);
  const out = new Uint8Array(prefix.length + input.length);
  out.set(prefix);
  out.set(input, prefix.length);
  return out;
}

/** Refused at the edge with this problem, and nothing started: no job, no reservation. */
export async function expectRefused(response: Response, status: number, code: string, keyId: string): Promise<void> {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  expect(await response.json()).toMatchObject({ status, code });
  expect(await jobCount(keyId)).toBe(0);
  expect(await meterOf(keyId).usage()).toMatchObject({ reservedMp: 0, settledMp: 0 });
}

/** A job for a backend, its image stored first at inputs/<id>, as the edge streams an upload there before dispatching it. */
export async function withInput({ image, ...job }: Omit<DispatchJob, "input"> & { image: Uint8Array }): Promise<DispatchJob> {
  const key = inputKey(job.id);
  await env.RESULTS.put(key, image);
  return { ...job, input: { key, bytes: image.length, sha256: await sha256Hex(image) } };
}

const DAY_MS = 86_400_000;

/** Makes the job look created `days` ago (and the same for its update time). */
export async function age(id: string, days: number): Promise<void> {
  const at = Date.now() - days * DAY_MS;
  await env.DB.prepare("UPDATE jobs SET created_at = ?, updated_at = ? WHERE id = ?").bind(at, at, id).run();
}

/** Sweeps until nothing is left to sweep, so that each test starts without another's expired jobs. */
export async function sweepAll(): Promise<void> {
  for (;;) {
    const report = await sweepExpired(env, configOf(env), 100);
    if (report.resultsExpired === 0 && report.rowsDeleted === 0) return;
  }
}
