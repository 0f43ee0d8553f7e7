import { SELF, env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { KEY_CACHE_TTL_MS } from "../../worker/src/auth/keys";
import { BASE, admin, newKey, withKey } from "./helpers";

describe("API key authentication", () => {
  it("answers 401 missing_api_key without a key, with a Bearer challenge", async () => {
    const response = await SELF.fetch(`${BASE}/v1/usage`);
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toContain("Bearer");
    expect(await response.json()).toMatchObject({ code: "missing_api_key" });
  });

  it("answers 401 invalid_api_key for an unknown key", async () => {
    const response = await withKey("hvar_sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "/v1/usage");
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ code: "invalid_api_key" });
  });

  it("answers 403 revoked_api_key as soon as the key is revoked", async () => {
    const { key, secret } = await newKey();
    expect((await withKey(secret, "/v1/usage")).status).toBe(200);
    await admin(`/admin/keys/${key.id}/revoke`, { method: "POST" });
    const response = await withKey(secret, "/v1/usage");
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: "revoked_api_key" });
  });

  describe("a key revoked by another isolate (straight in D1, so this isolate is not told)", () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it("is refused within KEY_CACHE_TTL_MS", async () => {
      const { key, secret } = await newKey();
      expect((await withKey(secret, "/v1/usage")).status).toBe(200);
      await env.DB.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ?").bind(Date.now(), key.id).run();
      vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + KEY_CACHE_TTL_MS });
      const response = await withKey(secret, "/v1/usage");
      expect(response.status).toBe(403);
      expect(await response.json()).toMatchObject({ code: "revoked_api_key" });
    });

    it("is read from D1 at most once per KEY_CACHE_TTL_MS, so it may still pass before then", async () => {
      const { key, secret } = await newKey();
      expect((await withKey(secret, "/v1/usage")).status).toBe(200);
      await env.DB.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ?").bind(Date.now(), key.id).run();
      expect((await withKey(secret, "/v1/usage")).status).toBe(200);
    });
  });

  it("answers 403 insufficient_scope when the key lacks the operation's scope", async () => {
    const { secret } = await newKey({ scopes: ["upscale"] });
    const response = await withKey(secret, "/v1/usage");
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: "insufficient_scope" });
  });
});
