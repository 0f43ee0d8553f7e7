import { SELF } from "cloudflare:test";
import type { ApiKey, KeySettings } from "../../worker/src/auth/keys";

export const BASE = "https://hvar.test";
export const ADMIN_SECRET = "test-admin-secret";

export function admin(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${ADMIN_SECRET}`);
  if (init.body) headers.set("content-type", "application/json");
  return SELF.fetch(`${BASE}${path}`, { ...init, headers });
}

export async function newKey(settings: Partial<KeySettings> = {}): Promise<{ key: ApiKey; secret: string }> {
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
