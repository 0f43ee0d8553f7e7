import { SELF, createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { configOf } from "../../worker/src/config";
import worker from "../../worker/src/index";
import { sweepExpired } from "../../worker/src/jobs/retention";
import { getJob } from "../../worker/src/storage/jobs";
import { age, ledgerOf, newKey, sweepAll, upscale, withKey } from "./helpers";
import { png } from "./images";

interface Job {
  id: string;
  outputs?: { scale: number; url: string }[];
  urlsExpireAt?: string;
  usage: { cacheHit: boolean };
}

const DAY_MS = 86_400_000;
const config = configOf(env);

/** A succeeded job of a new key (the stub runner answers at once). */
async function succeeded(options: { secret?: string; image?: Uint8Array; idempotencyKey?: string } = {}): Promise<Job & { secret: string; keyId: string }> {
  const key = options.secret ? null : await newKey();
  const secret = options.secret ?? key?.secret ?? "";
  const headers = options.idempotencyKey ? { "idempotency-key": options.idempotencyKey } : undefined;
  const response = await upscale(secret, options.image ?? (await png(24, 16)), { query: "scales=2", ...(headers ? { headers: { prefer: "wait=10", ...headers } } : {}) });
  if (response.status !== 200) throw new Error(`upscale: ${response.status} ${await response.text()}`);
  const job = await response.json<Job>();
  const row = await getJob(env.DB, job.id);
  return { ...job, secret, keyId: row?.keyId ?? "" };
}

const stored = async (key: string) => (await env.RESULTS.head(key)) !== null;

describe("retention: results", () => {
  it("is configured in wrangler.toml: results 30 days, job rows 90", () => {
    expect(config).toMatchObject({ RESULT_TTL_DAYS: 30, JOB_ROW_TTL_DAYS: 90 });
  });

  it("refuses a job row kept shorter than its results", () => {
    expect(() => configOf({ ...env, RESULT_TTL_DAYS: "30", JOB_ROW_TTL_DAYS: "7" })).toThrow(/JOB_ROW_TTL_DAYS/);
  });

  it("keeps the results, the row and the Idempotency-Key of a job younger than RESULT_TTL_DAYS", async () => {
    await sweepAll();
    const job = await succeeded({ idempotencyKey: "fresh-1" });
    await age(job.id, 29);
    await sweepAll();
    expect(await stored(`results/${job.id}/x2.png`)).toBe(true);
    expect((await withKey(job.secret, `/v1/upscales/${job.id}`)).status).toBe(200);
    expect((await getJob(env.DB, job.id))?.idempotencyKey).toBe("fresh-1");
  });

  it("answers 410 job_expired for a job older than RESULT_TTL_DAYS, before the sweep has run", async () => {
    const job = await succeeded();
    await age(job.id, 31);
    const read = await withKey(job.secret, `/v1/upscales/${job.id}`);
    expect(read.status).toBe(410);
    expect(await read.json()).toMatchObject({ code: "job_expired", jobId: job.id });
    await sweepAll();
  });

  it("leaves an expired job out of the list", async () => {
    const { secret } = await newKey();
    const old = await succeeded({ secret });
    const fresh = await succeeded({ secret, image: await png(20, 16) });
    await age(old.id, 31);
    const list = await (await withKey(secret, "/v1/upscales")).json<{ data: { id: string }[] }>();
    expect(list.data.map((j) => j.id)).toEqual([fresh.id]);
    await sweepAll();
  });

  it("deletes an expired job's results, leftover input and runner record, and keeps its row (still 410)", async () => {
    await sweepAll();
    const job = await succeeded();
    await env.RESULTS.put(`inputs/${job.id}`, "left by a job that timed out");
    await env.RESULTS.put(`jobs/${job.id}.json`, "{}");
    await age(job.id, 31);
    expect(await sweepExpired(env, config, 100)).toEqual({ resultsExpired: 1, rowsDeleted: 0 });
    for (const key of [`results/${job.id}/x2.png`, `inputs/${job.id}`, `jobs/${job.id}.json`]) expect(await stored(key), key).toBe(false);
    expect((await withKey(job.secret, `/v1/upscales/${job.id}`)).status).toBe(410);
  });

  it("lets an expired job's Idempotency-Key start a new job, before and after the sweep", async () => {
    const { secret } = await newKey();
    const image = await png(24, 16);
    const first = await succeeded({ secret, image, idempotencyKey: "reused-after-expiry" });
    await age(first.id, 31);
    const second = await succeeded({ secret, image: await png(24, 18), idempotencyKey: "reused-after-expiry" });
    expect(second.id).not.toBe(first.id);
    await age(second.id, 31);
    await sweepAll();
    const third = await succeeded({ secret, image, idempotencyKey: "reused-after-expiry" });
    expect(third.id).not.toBe(second.id);
  });

  it("answers no new request from an expired job's results (the result cache)", async () => {
    const { secret } = await newKey();
    const image = await png(26, 16);
    const first = await succeeded({ secret, image });
    await age(first.id, 31);
    const again = await succeeded({ secret, image });
    expect(again.usage.cacheHit).toBe(false);
    await sweepAll();
  });
});

describe("retention: job rows", () => {
  it("deletes a job's row, and its webhook delivery, after JOB_ROW_TTL_DAYS: reads answer 404, the ledger keeps its usage", async () => {
    await sweepAll();
    const job = await succeeded();
    await env.DB.prepare(
      "INSERT INTO webhook_deliveries (id, job_id, key_id, url, payload, next_attempt_at, created_at) VALUES (?, ?, ?, 'https://hooks.example/x', '{}', 0, 0)",
    )
      .bind(`msg_${job.id}`, job.id, job.keyId)
      .run();
    await age(job.id, 91);
    expect(await sweepExpired(env, config, 100)).toEqual({ resultsExpired: 1, rowsDeleted: 1 });
    expect(await getJob(env.DB, job.id)).toBeNull();
    expect(await env.DB.prepare("SELECT id FROM webhook_deliveries WHERE job_id = ?").bind(job.id).first()).toBeNull();
    const read = await withKey(job.secret, `/v1/upscales/${job.id}`);
    expect(read.status).toBe(404);
    expect(await read.json()).toMatchObject({ code: "job_not_found" });
    expect((await ledgerOf(job.keyId)).map((row) => row.job_id)).toEqual([job.id]);
  });

  it("keeps the row of a job between RESULT_TTL_DAYS and JOB_ROW_TTL_DAYS", async () => {
    await sweepAll();
    const job = await succeeded();
    await age(job.id, 89);
    await sweepAll();
    expect(await getJob(env.DB, job.id)).toMatchObject({ id: job.id, idempotencyKey: null, deletedAt: expect.any(Number) });
  });
});

describe("retention: batches", () => {
  it("sweeps at most `limit` jobs of each kind per run, oldest first", async () => {
    await sweepAll();
    const jobs = [await succeeded(), await succeeded(), await succeeded()];
    for (const [i, job] of jobs.entries()) await age(job.id, 40 - i); // jobs[0] is the oldest
    expect(await sweepExpired(env, config, 2)).toEqual({ resultsExpired: 2, rowsDeleted: 0 });
    expect(await Promise.all(jobs.map((job) => stored(`results/${job.id}/x2.png`)))).toEqual([false, false, true]);
    expect(await sweepExpired(env, config, 2)).toEqual({ resultsExpired: 1, rowsDeleted: 0 });

    for (const [i, job] of jobs.entries()) await age(job.id, 100 - i);
    expect(await sweepExpired(env, config, 2)).toEqual({ resultsExpired: 0, rowsDeleted: 2 });
    expect(await Promise.all(jobs.map(async (job) => (await getJob(env.DB, job.id)) !== null))).toEqual([false, false, true]);
    await sweepAll();
  });

  it("runs in the worker's scheduled handler", async () => {
    await sweepAll();
    const job = await succeeded();
    await age(job.id, 31);
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "* * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
    expect(await stored(`results/${job.id}/x2.png`)).toBe(false);
  });
});

describe("retention: signed URLs", () => {
  const expOf = (url: string) => Number(new URL(url).searchParams.get("exp"));

  it("last RESULT_URL_TTL_S for a job far from its expiry", async () => {
    const before = Math.floor(Date.now() / 1000);
    const job = await succeeded();
    const exp = expOf(job.outputs?.[0]?.url ?? "");
    expect(exp - before).toBeGreaterThanOrEqual(config.RESULT_URL_TTL_S);
    expect(exp - before).toBeLessThanOrEqual(config.RESULT_URL_TTL_S + 5);
    expect(Date.parse(job.urlsExpireAt ?? "") / 1000).toBe(exp);
  });

  it("never outlive the results: a job an hour from its expiry gets URLs valid for that hour", async () => {
    const job = await succeeded();
    await age(job.id, 30 - 1 / 24);
    const createdAt = (await getJob(env.DB, job.id))?.createdAt ?? 0;
    const read = await (await withKey(job.secret, `/v1/upscales/${job.id}`)).json<Job>();
    const expiresAtS = Math.floor((createdAt + 30 * DAY_MS) / 1000);
    expect(read.outputs?.map((o) => expOf(o.url))).toEqual([expiresAtS]);
    expect(Date.parse(read.urlsExpireAt ?? "") / 1000).toBe(expiresAtS);
    expect((await SELF.fetch(read.outputs?.[0]?.url ?? "")).status).toBe(200);
  });
});
