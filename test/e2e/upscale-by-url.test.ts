import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HvarClient, HvarError } from "../../packages/client/src/index";
import { api, download, example, imageOrigin, newKey, stack, type Job } from "./helpers";

/**
 * Images by URL end to end: a customer's origin (plain http on loopback, exempted as in local
 * development) serves a photo, and POST /v1/upscales with a JSON body naming it gets it upscaled
 * by the real runner.
 */
let origin: Awaited<ReturnType<typeof imageOrigin>>;

beforeAll(async () => {
  origin = await imageOrigin({ "/photos/astronaut.jpg": await example("astronaut") });
});

afterAll(async () => {
  await origin.close();
});

/** A key allowed to read sources from the customer's origin. */
const originKey = () => newKey({ cdnOrigins: [stack.cdnOrigin] });

function byUrl(secret: string, body: unknown): Promise<Response> {
  return api("/v1/upscales", secret, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json", prefer: "wait=60" } });
}

describe("an image by URL", () => {
  it("is fetched from the origin and upscaled by the runner, like an upload", async () => {
    const { secret } = await originKey();
    const response = await byUrl(secret, { image: origin.url("/photos/astronaut.jpg"), scales: [2], format: "png" });
    expect(response.status).toBe(200);
    const job = (await response.json()) as Job;
    expect(job.input).toMatchObject({ width: 256, height: 256, type: "jpeg" });
    const x2 = await download(job.outputs?.[0]?.url ?? "");
    expect([x2.format, x2.width, x2.height]).toEqual(["png", 512, 512]);
  });

  it("outside the key's CDN origins is refused with 403 source_not_allowed", async () => {
    const { secret } = await newKey();
    const response = await byUrl(secret, { image: origin.url("/photos/astronaut.jpg") });
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: "source_not_allowed" });
  });

  it("that the origin does not have is refused with 404 source_not_found", async () => {
    const { secret } = await originKey();
    const response = await byUrl(secret, { image: origin.url("/photos/missing.jpg") });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ code: "source_not_found" });
  });

  it("upscales through the client's upscale({ url })", async () => {
    const { secret } = await originKey();
    const hvar = new HvarClient({ baseUrl: stack.workerUrl, apiKey: secret });
    const job = await hvar.upscale({ url: origin.url("/photos/astronaut.jpg") }, { scales: [1, 4], format: "webp", wait: 60 });
    expect(job.outputs?.map((o) => [o.scale, o.width, o.height, o.contentType])).toEqual([
      [1, 256, 256, "image/webp"],
      [4, 1024, 1024, "image/webp"],
    ]);
  });

  it("that cannot be used throws HvarError with the source's code from the client", async () => {
    const { secret } = await newKey();
    const hvar = new HvarClient({ baseUrl: stack.workerUrl, apiKey: secret });
    const error = await hvar.upscale({ url: origin.url("/photos/astronaut.jpg") }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HvarError);
    expect(error).toMatchObject({ status: 403, code: "source_not_allowed" });
  });
});

describe("the Content-Type of an upscale", () => {
  it("that is not accepted gets 415 unsupported_content_type naming what is", async () => {
    const { secret } = await newKey();
    const response = await api("/v1/upscales", secret, { method: "POST", body: "a photo of a cat", headers: { "content-type": "text/plain" } });
    expect(response.status).toBe(415);
    const problem = (await response.json()) as { code: string; detail: string };
    expect(problem.code).toBe("unsupported_content_type");
    expect(problem.detail).toContain("application/json");
  });
});
