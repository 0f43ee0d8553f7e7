import { describe, expect, it } from "vitest";
import { admin } from "./helpers";
import { ORIGIN, cdnKey, cdnUrl, get, sourceUrl } from "./cdn";
import { png } from "./images";
import { serve } from "./origin";

/** A source with real PNG bytes at a URL of its own. */
async function servedSource(): Promise<string> {
  const source = sourceUrl();
  await serve(source, await png(40, 30), { headers: { "content-type": "image/png" } });
  return source;
}

async function expectRefused(response: Response, code: string): Promise<void> {
  expect(response.status).toBe(403);
  expect(response.headers.get("x-hvar-cdn")).toBe(`err=${code}`);
  expect(await response.json()).toMatchObject({ code });
}

describe("signed CDN URLs", () => {
  it("answer the image", async () => {
    const issued = await cdnKey();
    const response = await get(await cdnUrl(issued, await servedSource(), { format: "png" }));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("image/png");
    expect(response.headers.get("x-hvar-cdn")).toBe("ok");
  });

  it("still verify when the options are written differently (the signature covers the normalized form)", async () => {
    const issued = await cdnKey();
    const url = await cdnUrl(issued, await servedSource(), { scale: 4, format: "png" });
    const respelled = url.replace("scale=4,format=png", "f=png,scale=4");
    expect(respelled).not.toBe(url);
    expect((await get(respelled)).status).toBe(200);
  });

  it("are refused when an option was changed", async () => {
    const issued = await cdnKey();
    const url = await cdnUrl(issued, await servedSource(), { scale: 2, format: "png" });
    await expectRefused(await get(url.replace("scale=2", "scale=4")), "invalid_signature");
  });

  it("are refused when the source was changed", async () => {
    const issued = await cdnKey();
    const url = await cdnUrl(issued, await servedSource(), { format: "png" }, { defaultOrigin: ORIGIN });
    expect(url).toMatch(/\/photo\.png$/);
    await expectRefused(await get(url.replace("photo.png", "other.png")), "invalid_signature");
  });

  it("are refused when signed with another key's secret", async () => {
    const [issued, other] = await Promise.all([cdnKey(), cdnKey()]);
    const url = await cdnUrl(issued, await servedSource(), { format: "png" }, { secret: other.cdnSecret });
    await expectRefused(await get(url), "invalid_signature");
  });

  it("are refused when another key's signature is moved onto this key", async () => {
    const [issued, other] = await Promise.all([cdnKey(), cdnKey()]);
    const url = await cdnUrl(other, await servedSource(), { format: "png" });
    await expectRefused(await get(url.replace(other.key.id, issued.key.id)), "invalid_signature");
  });

  it("are refused after their expiry", async () => {
    const issued = await cdnKey();
    const url = await cdnUrl(issued, await servedSource(), { format: "png" }, { expiresIn: -1 });
    await expectRefused(await get(url), "url_expired");
  });

  it("answer before their expiry, and no longer than it in the browser cache", async () => {
    const issued = await cdnKey();
    const response = await get(await cdnUrl(issued, await servedSource(), { format: "png" }, { expiresIn: 120 }));
    expect(response.status).toBe(200);
    const maxAge = Number(/max-age=(\d+)/.exec(response.headers.get("cache-control") ?? "")?.[1]);
    expect(maxAge).toBeGreaterThan(100);
    expect(maxAge).toBeLessThanOrEqual(120);
  });

  it("check the signature before the expiry, so an expired URL cannot be probed", async () => {
    const issued = await cdnKey();
    const url = await cdnUrl(issued, await servedSource(), { format: "png" }, { expiresIn: -1 });
    await expectRefused(await get(url.replace("format=png", "format=jpeg")), "invalid_signature");
  });

  it("stop working when the key is rotated", async () => {
    const issued = await cdnKey();
    const url = await cdnUrl(issued, await servedSource(), { format: "png" });
    expect((await admin(`/admin/keys/${issued.key.id}/rotate`, { method: "POST" })).status).toBe(200);
    await expectRefused(await get(url), "invalid_signature");
  });

  it("stop working when the key is revoked", async () => {
    const issued = await cdnKey();
    const url = await cdnUrl(issued, await servedSource(), { format: "png" });
    await admin(`/admin/keys/${issued.key.id}/revoke`, { method: "POST" });
    await expectRefused(await get(url), "revoked_api_key");
  });

  it("need a key with the cdn scope", async () => {
    const issued = await cdnKey({ scopes: ["upscale"] });
    await expectRefused(await get(await cdnUrl(issued, await servedSource(), { format: "png" })), "insufficient_scope");
  });

  it("need a key that exists", async () => {
    const issued = await cdnKey();
    const url = await cdnUrl(issued, await servedSource(), { format: "png" });
    await expectRefused(await get(url.replace(issued.key.id, "key_aaaaaaaaaaaaaaaaaaaa")), "unknown_key");
  });
});

describe("unsigned CDN URLs", () => {
  it("are refused for keys that do not allow them", async () => {
    const issued = await cdnKey();
    await expectRefused(await get(await cdnUrl(issued, await servedSource(), { format: "png" }, { secret: undefined })), "unsigned_not_allowed");
  });

  it("answer for keys that allow them", async () => {
    const issued = await cdnKey({ cdnAllowUnsigned: true });
    const response = await get(await cdnUrl(issued, await servedSource(), { format: "png" }, { secret: undefined }));
    expect(response.status).toBe(200);
  });

  it("are refused for origins the key does not list", async () => {
    const issued = await cdnKey({ cdnAllowUnsigned: true });
    const elsewhere = sourceUrl("photo.png", "https://elsewhere.example");
    await serve(elsewhere, await png(40, 30));
    await expectRefused(await get(await cdnUrl(issued, elsewhere, { format: "png" }, { secret: undefined })), "source_not_allowed");
  });
});

describe("malformed CDN URLs", () => {
  it("answer 400 with the reason in X-Hvar-Cdn", async () => {
    const issued = await cdnKey();
    const url = await cdnUrl(issued, await servedSource(), { format: "png" });
    const response = await get(url.replace("format=png", "format=png,sharpen=1"));
    expect(response.status).toBe(400);
    expect(response.headers.get("x-hvar-cdn")).toBe("err=invalid_options");
    expect(await response.json()).toMatchObject({ code: "invalid_options", detail: expect.stringContaining('"sharpen"') });
  });
});
