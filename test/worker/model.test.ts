import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { configOf } from "../../worker/src/config";
import { newKey, withKey } from "./helpers";
import { STUB_LIMITS } from "./setup/stub-limits";

describe("GET /v1/model", () => {
  it("describes the served model as its runners do, within the worker's own limits", async () => {
    const { secret } = await newKey();
    const response = await withKey(secret, "/v1/model");
    expect(response.status).toBe(200);
    const config = configOf(env);
    expect(await response.json()).toEqual({
      version: env.MODEL_VERSION,
      scales: STUB_LIMITS.scales,
      limits: {
        maxInputPixels: Math.min(config.MAX_INPUT_PIXELS, STUB_LIMITS.maxInputPixels),
        maxOutputPixels: Math.min(config.MAX_OUTPUT_PIXELS, STUB_LIMITS.maxOutputPixels),
        maxUploadBytes: Math.min(config.MAX_UPLOAD_BYTES, STUB_LIMITS.maxBodyBytes),
      },
      detail: { sampling: false },
      cleanup: { adjustable: true, default: "auto" },
    });
  });

  it("answers a key without the upscale scope 403 insufficient_scope", async () => {
    const { secret } = await newKey({ scopes: ["usage"] });
    const response = await withKey(secret, "/v1/model");
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: "insufficient_scope" });
  });

  it("reports the caller's rate limit like every keyed route", async () => {
    const { secret } = await newKey({ rateLimitPerMin: 5 });
    const response = await withKey(secret, "/v1/model");
    expect(response.headers.get("ratelimit-limit")).toBe("5");
  });
});
