import { describe, expect, it } from "vitest";
import { MAX_PAGE } from "../../worker/src/routes/upscale-list";
import { newKey, upscale, withKey } from "./helpers";
import { png } from "./images";

interface Page {
  data: { id: string; status: string }[];
  nextCursor: string | null;
}

/** A job of the key that ends as the stub runner's behaviour says (`ok`: succeeded, `fail`, `hang`: running). */
async function job(secret: string, behaviour = "ok"): Promise<string> {
  const image = await png(20, 12, { text: { "hvar-test": behaviour } });
  const response = await upscale(secret, image, { headers: behaviour === "hang" ? { prefer: "respond-async" } : {} });
  const body = await response.json<{ id?: string; jobId?: string }>();
  const id = body.id ?? body.jobId;
  if (!id) throw new Error(`no job: ${response.status}`);
  return id;
}

async function list(secret: string, query = ""): Promise<Page> {
  const response = await withKey(secret, `/v1/upscales${query ? `?${query}` : ""}`);
  if (response.status !== 200) throw new Error(`list: ${response.status} ${await response.text()}`);
  return response.json<Page>();
}

describe("GET /v1/upscales", () => {
  it("lists the key's jobs newest first, with their statuses", async () => {
    const { secret } = await newKey();
    const first = await job(secret);
    const second = await job(secret, "fail");
    const third = await job(secret);
    const page = await list(secret);
    expect(page.data.map((j) => [j.id, j.status])).toEqual([
      [third, "succeeded"],
      [second, "failed"],
      [first, "succeeded"],
    ]);
    expect(page.nextCursor).toBeNull();
  });

  it("pages with limit and nextCursor, without repeating or skipping a job", async () => {
    const { secret } = await newKey();
    const ids = [await job(secret), await job(secret), await job(secret)].reverse();
    const one = await list(secret, "limit=2");
    expect(one.data.map((j) => j.id)).toEqual(ids.slice(0, 2));
    const two = await list(secret, `limit=2&cursor=${one.nextCursor}`);
    expect(two.data.map((j) => j.id)).toEqual(ids.slice(2));
    expect(two.nextCursor).toBeNull();
  });

  it("filters by status", async () => {
    const { secret } = await newKey();
    await job(secret);
    const failed = await job(secret, "fail");
    const running = await job(secret, "hang");
    const canceled = await job(secret, "hang");
    await withKey(secret, `/v1/upscales/${canceled}/cancel`, { method: "POST" });
    expect((await list(secret, "status=failed")).data.map((j) => j.id)).toEqual([failed]);
    expect((await list(secret, "status=running")).data.map((j) => j.id)).toEqual([running]);
    expect((await list(secret, "status=canceled")).data.map((j) => j.id)).toEqual([canceled]);
    await withKey(secret, `/v1/upscales/${running}/cancel`, { method: "POST" });
  });

  it("shows only the calling key's jobs", async () => {
    const mine = await newKey();
    const other = await newKey();
    await job(other.secret);
    const own = await job(mine.secret);
    expect((await list(mine.secret)).data.map((j) => j.id)).toEqual([own]);
  });

  it("leaves deleted jobs out", async () => {
    const { secret } = await newKey();
    const kept = await job(secret);
    const deleted = await job(secret);
    await withKey(secret, `/v1/upscales/${deleted}`, { method: "DELETE" });
    expect((await list(secret)).data.map((j) => j.id)).toEqual([kept]);
  });

  it("refuses a cursor it did not give with 400 invalid_cursor", async () => {
    const { secret } = await newKey();
    const response = await withKey(secret, "/v1/upscales?cursor=bm90LWEtY3Vyc29y");
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: "invalid_cursor" });
  });

  it(`refuses a limit above ${MAX_PAGE} with 400`, async () => {
    const { secret } = await newKey();
    const response = await withKey(secret, `/v1/upscales?limit=${MAX_PAGE + 1}`);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: "invalid_request" });
  });

  it("counts against the rate limit and sends its headers", async () => {
    const { secret } = await newKey({ rateLimitPerMin: 30 });
    const response = await withKey(secret, "/v1/upscales");
    expect(response.headers.get("ratelimit-limit")).toBe("30");
    expect(response.headers.get("ratelimit-remaining")).toBe("29");
  });

  it("answers 401 without a key", async () => {
    const response = await withKey("", "/v1/upscales");
    expect(response.status).toBe(401);
  });
});
