import { describe, expect, it } from "vitest";
import { newKey, upscale, withKey } from "./helpers";
import { png } from "./images";

/** The stub runner reports a running job at 1 of 4 tiles (setup/runner-stub.ts). */

async function hanging(secret: string): Promise<string> {
  const image = await png(20, 12, { text: { "hvar-test": "hang" } });
  const { id } = await (await upscale(secret, image, { headers: { prefer: "respond-async" } })).json<{ id: string }>();
  return id;
}

describe("progress", () => {
  it("shows a running job's tiles done, of the total, and their fraction", async () => {
    const { secret } = await newKey();
    const id = await hanging(secret);
    const job = await (await withKey(secret, `/v1/upscales/${id}`)).json();
    expect(job).toMatchObject({ status: "running", progress: { tilesDone: 1, tilesTotal: 4, fraction: 0.25 } });
    await withKey(secret, `/v1/upscales/${id}/cancel`, { method: "POST" });
  });

  it("is kept from the last poll, so the list shows it too", async () => {
    const { secret } = await newKey();
    const id = await hanging(secret);
    await withKey(secret, `/v1/upscales/${id}`);
    const page = await (await withKey(secret, "/v1/upscales")).json<{ data: unknown[] }>();
    expect(page.data[0]).toMatchObject({ id, progress: { tilesDone: 1, tilesTotal: 4, fraction: 0.25 } });
    await withKey(secret, `/v1/upscales/${id}/cancel`, { method: "POST" });
  });

  it("is absent once the job has ended", async () => {
    const { secret } = await newKey();
    const id = await hanging(secret);
    await withKey(secret, `/v1/upscales/${id}`);
    const canceled = await (await withKey(secret, `/v1/upscales/${id}/cancel`, { method: "POST" })).json<Record<string, unknown>>();
    expect(canceled.status).toBe("canceled");
    expect(canceled).not.toHaveProperty("progress");
  });
});
