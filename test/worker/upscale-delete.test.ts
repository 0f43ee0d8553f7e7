import { SELF, env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DELETION_BOUND_MS } from "../../worker/src/jobs/delete";
import { markDeleted } from "../../worker/src/storage/jobs";
import { newKey, upscale, withKey } from "./helpers";
import { png } from "./images";

interface Job {
  id: string;
  status: string;
  outputs?: { scale: number; url: string }[];
  usage: { cacheHit: boolean };
}

/** A succeeded job of the key (the stub runner answers at once). */
async function succeeded(secret: string, image?: Uint8Array): Promise<Job> {
  const response = await upscale(secret, image ?? (await png(24, 16)), { query: "scales=2" });
  if (response.status !== 200) throw new Error(`upscale: ${response.status}`);
  return response.json<Job>();
}

const remove = (secret: string, id: string) => withKey(secret, `/v1/upscales/${id}`, { method: "DELETE" });

describe("DELETE /v1/upscales/{id}", () => {
  it("answers 204 and deletes the job's results from R2", async () => {
    const { secret } = await newKey();
    const job = await succeeded(secret);
    expect(await env.RESULTS.head(`results/${job.id}/x2.png`)).not.toBeNull();
    const response = await remove(secret, job.id);
    expect(response.status).toBe(204);
    expect(await env.RESULTS.head(`results/${job.id}/x2.png`)).toBeNull();
  });

  it("makes reads of the job answer 410 job_deleted", async () => {
    const { secret } = await newKey();
    const job = await succeeded(secret);
    await remove(secret, job.id);
    const read = await withKey(secret, `/v1/upscales/${job.id}`);
    expect(read.status).toBe(410);
    expect(read.headers.get("content-type")).toBe("application/problem+json");
    expect(await read.json()).toMatchObject({ code: "job_deleted", jobId: job.id, deletedAt: expect.stringMatching(/^\d{4}-/) });
  });

  it("makes the job's signed URLs answer 410, even one the edge cache holds", async () => {
    const { secret } = await newKey();
    const job = await succeeded(secret);
    const url = job.outputs?.[0]?.url ?? "";
    await (await SELF.fetch(url)).arrayBuffer();
    expect((await SELF.fetch(url)).headers.get("x-hvar-cache")).toBe("hit");
    await remove(secret, job.id);
    const download = await SELF.fetch(url);
    expect(download.status).toBe(410);
    expect(await download.json()).toMatchObject({ code: "result_deleted" });
  });

  describe("made by another isolate (the mark straight in D1, so this isolate is not told)", () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it("stops the job's signed URLs within DELETION_BOUND_MS, even one the edge cache holds", async () => {
      const { secret } = await newKey();
      const job = await succeeded(secret);
      const url = job.outputs?.[0]?.url ?? "";
      await (await SELF.fetch(url)).arrayBuffer();
      expect((await SELF.fetch(url)).headers.get("x-hvar-cache")).toBe("hit");
      await markDeleted(env.DB, job.id);
      vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + DELETION_BOUND_MS });
      const download = await SELF.fetch(url);
      expect(download.status).toBe(410);
      expect(await download.json()).toMatchObject({ code: "result_deleted" });
    });

    it("is read from D1 at most once per DELETION_BOUND_MS, so a download may still pass before then", async () => {
      const { secret } = await newKey();
      const job = await succeeded(secret);
      const url = job.outputs?.[0]?.url ?? "";
      await (await SELF.fetch(url)).arrayBuffer();
      await markDeleted(env.DB, job.id);
      expect((await SELF.fetch(url)).status).toBe(200);
    });
  });

  it("answers 204 again to a second DELETE", async () => {
    const { secret } = await newKey();
    const job = await succeeded(secret);
    await remove(secret, job.id);
    expect((await remove(secret, job.id)).status).toBe(204);
  });

  it("refuses a job that is still running with 409 job_not_finished, and deletes nothing", async () => {
    const { secret } = await newKey();
    const image = await png(24, 16, { text: { "hvar-test": "hang" } });
    const { id } = await (await upscale(secret, image, { headers: { prefer: "respond-async" } })).json<Job>();
    const response = await remove(secret, id);
    expect(response.status).toBe(409);
    expect(await response.json()).toMatchObject({ code: "job_not_finished", jobId: id });
    expect((await withKey(secret, `/v1/upscales/${id}`)).status).toBe(200);
    await withKey(secret, `/v1/upscales/${id}/cancel`, { method: "POST" });
  });

  it("deletes a canceled job", async () => {
    const { secret } = await newKey();
    const image = await png(24, 16, { text: { "hvar-test": "hang" } });
    const { id } = await (await upscale(secret, image, { headers: { prefer: "respond-async" } })).json<Job>();
    await withKey(secret, `/v1/upscales/${id}/cancel`, { method: "POST" });
    expect((await remove(secret, id)).status).toBe(204);
    expect((await withKey(secret, `/v1/upscales/${id}`)).status).toBe(410);
  });

  it("answers 404 for another key's job, and deletes nothing", async () => {
    const owner = await newKey();
    const other = await newKey();
    const job = await succeeded(owner.secret);
    const response = await remove(other.secret, job.id);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ code: "job_not_found" });
    expect((await SELF.fetch(job.outputs?.[0]?.url ?? "")).status).toBe(200);
  });

  it("never takes another job's results: an earlier cache hit of the same image keeps working", async () => {
    const { secret } = await newKey();
    const image = await png(24, 16);
    const first = await succeeded(secret, image);
    const hit = await succeeded(secret, image);
    expect(hit.usage.cacheHit).toBe(true);
    await remove(secret, first.id);
    expect((await SELF.fetch(hit.outputs?.[0]?.url ?? "")).status).toBe(200);
  });

  it("stops the result cache from answering with the deleted results", async () => {
    const { secret } = await newKey();
    const image = await png(24, 16);
    const first = await succeeded(secret, image);
    await remove(secret, first.id);
    const again = await succeeded(secret, image);
    expect(again.usage.cacheHit).toBe(false);
  });
});
