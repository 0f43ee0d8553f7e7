import { describe, expect, it } from "vitest";
import { HvarClient, type Upscale } from "../../packages/client/src/index";

/**
 * What `upscale` sends, seen by a fetch that records the request and answers a finished job (the
 * client against the real stack is test/e2e/client.test.ts).
 */
const finished: Upscale = {
  id: "j_aaaaaaaaaaaaaaaaaaaa",
  status: "succeeded",
  createdAt: "2026-01-01T00:00:00.000Z",
  model: { id: "hvar", version: "1" },
  options: { scales: [2], format: "png", quality: null, temperature: 0, cleanup: 1 },
  input: { width: 40, height: 30, type: "png", megapixels: 0.0012 },
  outputs: [],
  usage: { inputMp: 0.0012, cacheHit: false, billable: true, billedMp: 0.0012 },
};

function recording(): { hvar: HvarClient; sent: Request[] } {
  const sent: Request[] = [];
  const fetch = async (input: string | URL | Request, init?: RequestInit) => {
    sent.push(new Request(input, init));
    return Response.json(finished);
  };
  return { hvar: new HvarClient({ baseUrl: "https://api.hvar.test", apiKey: "hvar_sk_test", fetch }), sent };
}

describe("upscale({ url })", () => {
  it("sends the URL and the options as a JSON body, without a query string", async () => {
    const { hvar, sent } = recording();
    await hvar.upscale({ url: "https://images.example/cat.jpg" }, { scales: [2, 4], format: "webp", quality: 80, webhookUrl: "https://hooks.example/h" });
    const [request] = sent;
    expect([request?.method, request?.url, request?.headers.get("content-type")]).toEqual(["POST", "https://api.hvar.test/v1/upscales", "application/json"]);
    expect(await request?.json()).toEqual({ image: "https://images.example/cat.jpg", scales: [2, 4], format: "webp", quality: 80, webhook_url: "https://hooks.example/h" });
  });

  it("takes a URL object as well", async () => {
    const { hvar, sent } = recording();
    await hvar.upscale({ url: new URL("https://images.example/cat.jpg") });
    expect(await sent[0]?.json()).toEqual({ image: "https://images.example/cat.jpg" });
  });

  it("sends an Idempotency-Key, so that its retries make one job", async () => {
    const { hvar, sent } = recording();
    await hvar.upscale({ url: "https://images.example/cat.jpg" });
    expect(sent[0]?.headers.get("idempotency-key")).toMatch(/^[0-9a-f-]{36}$/);
  });
});
