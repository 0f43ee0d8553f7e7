import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
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

  it("answers 403 insufficient_scope when the key lacks the operation's scope", async () => {
    const { secret } = await newKey({ scopes: ["upscale"] });
    const response = await withKey(secret, "/v1/usage");
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: "insufficient_scope" });
  });
});
