import { SELF, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { getJob, insertJob, markDeleted } from "../../worker/src/storage/jobs";
import { age, newKey, sweepAll, upscale, withKey } from "./helpers";
import { png } from "./images";

interface Job {
  id: string;
  outputs?: { scale: number; url: string }[];
  usage: { cacheHit: boolean };
}

/** A succeeded job (the stub runner answers at once); `image` decides whether it is a cache hit. */
async function succeeded(secret: string, image: Uint8Array): Promise<Job> {
  const response = await upscale(secret, image, { query: "scales=2" });
  if (response.status !== 200) throw new Error(`upscale: ${response.status} ${await response.text()}`);
  return response.json<Job>();
}

/** A job computed, then a cache hit of it by another key. */
async function computedAndHit(width: number): Promise<{ image: Uint8Array; first: Job; hit: Job; secrets: [string, string] }> {
  const image = await png(width, 16);
  const [one, two] = [await newKey(), await newKey()];
  const first = await succeeded(one.secret, image);
  const hit = await succeeded(two.secret, image);
  expect([first.usage.cacheHit, hit.usage.cacheHit]).toEqual([false, true]);
  return { image, first, hit, secrets: [one.secret, two.secret] };
}

const remove = (secret: string, id: string) => withKey(secret, `/v1/upscales/${id}`, { method: "DELETE" });
const stored = async (key: string) => (await env.RESULTS.head(key)) !== null;
const urlOf = (job: Job) => job.outputs?.[0]?.url ?? "";
const bytesAt = async (url: string) => new Uint8Array(await (await SELF.fetch(url)).arrayBuffer());

describe("a cache hit shares the result files of the job that computed them", () => {
  it("writes no file of its own, and its URLs name only itself and serve the same bytes", async () => {
    const { first, hit } = await computedAndHit(30);
    expect((await env.RESULTS.list({ prefix: `results/${hit.id}/` })).objects).toEqual([]);
    expect(new URL(urlOf(hit)).pathname).toBe(`/v1/results/${hit.id}/x2.png`);
    const [mine, theirs] = [await SELF.fetch(urlOf(hit)), await SELF.fetch(urlOf(first))];
    expect(mine.status).toBe(200);
    expect(mine.headers.get("etag")).toBe(theirs.headers.get("etag"));
    expect(new Uint8Array(await mine.arrayBuffer())).toEqual(new Uint8Array(await theirs.arrayBuffer()));
  });

  it("keeps the files while the hit keeps its results, when the job that computed them is deleted", async () => {
    const { first, hit, secrets } = await computedAndHit(31);
    const before = await bytesAt(urlOf(hit));
    expect((await remove(secrets[0], first.id)).status).toBe(204);
    expect((await SELF.fetch(urlOf(first))).status).toBe(410);
    expect(await stored(`results/${first.id}/x2.png`)).toBe(true);
    expect(await bytesAt(urlOf(hit))).toEqual(before);
  });

  it("deletes the files with the last job that holds them, whichever goes last", async () => {
    for (const order of [[0, 1], [1, 0]] as const) {
      const { first, hit, secrets } = await computedAndHit(32 + order[0]);
      const jobs = [first, hit];
      const [a, b] = order;
      await remove(secrets[a], (jobs[a] as Job).id);
      expect(await stored(`results/${first.id}/x2.png`)).toBe(true);
      await remove(secrets[b], (jobs[b] as Job).id);
      expect(await stored(`results/${first.id}/x2.png`)).toBe(false);
    }
  });

  it("answers a later request from files a hit still holds after the job that made them was deleted", async () => {
    const { image, first, hit, secrets } = await computedAndHit(34);
    await remove(secrets[0], first.id);
    const third = await succeeded((await newKey()).secret, image);
    expect(third.usage.cacheHit).toBe(true);
    expect((await getJob(env.DB, third.id))?.resultsOf).toBe(first.id);
    await remove(secrets[1], hit.id);
    expect(await stored(`results/${first.id}/x2.png`)).toBe(true);
  });

  it("is refused by the insert itself once no job holds the files, so a hit never outlives them", async () => {
    const { first, hit } = await computedAndHit(35);
    const row = await getJob(env.DB, hit.id);
    if (!row?.outputs) throw new Error("no hit row");
    await markDeleted(env.DB, first.id);
    await markDeleted(env.DB, hit.id);
    const late = { ...row, id: `${row.id.slice(0, -4)}late`, idempotencyKey: null, status: "succeeded" as const };
    const shares = { owner: first.id, createdAfter: 0 };
    expect(await insertJob(env.DB, late, { outputs: row.outputs, model: row.model, cleanup: row.cleanupApplied, shares })).toBeNull();
  });
});

describe("the record an insert returns", () => {
  it("is the row D1 reads back, for a hit sharing files and for a queued job", async () => {
    const { first, hit } = await computedAndHit(45);
    const row = await getJob(env.DB, hit.id);
    if (!row?.outputs) throw new Error("no hit row");
    const { id, keyId, requestHash, cacheKey, options, input, webhookUrl, origin, requestId, createdAt, deadlineAt } = row;
    const fields = { keyId, idempotencyKey: null, requestHash, cacheKey, options, input, webhookUrl, origin, requestId, createdAt, deadlineAt };
    const shared = { ...fields, id: `${id.slice(0, -5)}again`, status: "succeeded" as const, backend: "cache" };
    const queued = { ...fields, id: `${id.slice(0, -5)}queue`, status: "queued" as const, backend: "runner-pool" };
    const done = { outputs: row.outputs, model: row.model, cleanup: row.cleanupApplied, shares: { owner: first.id, createdAfter: 0 } };
    expect(await insertJob(env.DB, shared, done)).toEqual(await getJob(env.DB, shared.id));
    expect(await insertJob(env.DB, queued)).toEqual(await getJob(env.DB, queued.id));
  });
});

describe("retention of shared result files", () => {
  it("keeps an expired job's files while a younger hit holds them, and deletes them when that hit expires", async () => {
    await sweepAll();
    const { first, hit } = await computedAndHit(36);
    await age(first.id, 31);
    await age(hit.id, 10);
    await sweepAll();
    expect(await stored(`results/${first.id}/x2.png`)).toBe(true);
    expect((await SELF.fetch(urlOf(hit))).status).toBe(200);
    await age(hit.id, 31);
    await sweepAll();
    expect(await stored(`results/${first.id}/x2.png`)).toBe(false);
  });

  it("shares no files whose job has expired, even through a younger hit that holds them", async () => {
    await sweepAll();
    const { image, first } = await computedAndHit(37);
    await age(first.id, 31);
    const again = await succeeded((await newKey()).secret, image);
    expect(again.usage.cacheHit).toBe(false);
    await sweepAll();
  });
});
