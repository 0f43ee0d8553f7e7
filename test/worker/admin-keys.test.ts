import { SELF, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BASE, admin, newKey } from "./helpers";

describe("admin API authentication", () => {
  it("refuses requests without the admin secret", async () => {
    const response = await SELF.fetch(`${BASE}/admin/keys`);
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ code: "admin_unauthorized" });
  });

  it("refuses a wrong admin secret", async () => {
    const response = await SELF.fetch(`${BASE}/admin/keys`, { headers: { authorization: "Bearer test-admin-secreT" } });
    expect(response.status).toBe(401);
  });

  it("does not accept an API key as the admin secret", async () => {
    const { secret } = await newKey();
    const response = await SELF.fetch(`${BASE}/admin/keys`, { headers: { authorization: `Bearer ${secret}` } });
    expect(response.status).toBe(401);
  });
});

describe("creating keys", () => {
  it("returns the key with its secret, once", async () => {
    const { key, secret } = await newKey({ owner: "o-create", scopes: ["upscale"], cdnOrigins: ["https://img.example.com"] });
    expect(secret).toMatch(/^hvar_sk_[A-Za-z0-9_-]{43}$/);
    expect(key).toMatchObject({ owner: "o-create", scopes: ["upscale"], monthlyQuotaMp: 1000, rateLimitPerMin: 1000, revokedAt: null });
    const listed = await (await admin("/admin/keys?owner=o-create")).json();
    expect(JSON.stringify(listed)).not.toContain(secret);
  });

  it("issues a Standard Webhooks secret with the key, and a new one on rotation", async () => {
    const { key, webhookSecret } = await newKey();
    expect(webhookSecret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const rotated = await (await admin(`/admin/keys/${key.id}/rotate`, { method: "POST" })).json<{ webhookSecret: string }>();
    expect(rotated.webhookSecret).toMatch(/^whsec_/);
    expect(rotated.webhookSecret).not.toBe(webhookSecret);
  });

  it("stores only a hash of the secret", async () => {
    const { key, secret } = await newKey();
    const row = await env.DB.prepare("SELECT * FROM api_keys WHERE id = ?").bind(key.id).first();
    expect(JSON.stringify(row)).not.toContain(secret.slice(8));
  });

  it("rejects invalid settings as a 400 problem", async () => {
    const response = await admin("/admin/keys", { method: "POST", body: JSON.stringify({ owner: "x", monthlyQuotaMp: -1, rateLimitPerMin: 10 }) });
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(await response.json()).toMatchObject({ code: "invalid_request" });
  });

  it("rejects unknown scopes", async () => {
    const response = await admin("/admin/keys", {
      method: "POST",
      body: JSON.stringify({ owner: "x", monthlyQuotaMp: 1, rateLimitPerMin: 10, scopes: ["root"] }),
    });
    expect(response.status).toBe(400);
  });
});

describe("listing keys", () => {
  it("lists the keys of one owner", async () => {
    await newKey({ owner: "o-list" });
    await newKey({ owner: "o-list" });
    await newKey({ owner: "o-other" });
    const { keys } = await (await admin("/admin/keys?owner=o-list")).json<{ keys: unknown[] }>();
    expect(keys).toHaveLength(2);
  });

  it("answers 404 for an unknown key id", async () => {
    const response = await admin("/admin/keys/key_nope");
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ code: "key_not_found" });
  });
});

describe("rotating keys", () => {
  it("issues a new secret and retires the old one at once", async () => {
    const { key, secret } = await newKey();
    const rotated = await (await admin(`/admin/keys/${key.id}/rotate`, { method: "POST" })).json<{ secret: string }>();
    expect(rotated.secret).not.toBe(secret);
    const usage = (s: string) => SELF.fetch(`${BASE}/v1/usage`, { headers: { authorization: `Bearer ${s}` } });
    expect((await usage(secret)).status).toBe(401);
    expect((await usage(rotated.secret)).status).toBe(200);
  });

  it("refuses to rotate a revoked key", async () => {
    const { key } = await newKey();
    await admin(`/admin/keys/${key.id}/revoke`, { method: "POST" });
    const response = await admin(`/admin/keys/${key.id}/rotate`, { method: "POST" });
    expect(response.status).toBe(409);
  });
});

describe("revoking keys", () => {
  it("marks the key revoked", async () => {
    const { key } = await newKey();
    const revoked = await (await admin(`/admin/keys/${key.id}/revoke`, { method: "POST" })).json<{ revokedAt: string }>();
    expect(revoked.revokedAt).toEqual(expect.any(String));
  });
});
