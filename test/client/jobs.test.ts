import { describe, expect, it } from "vitest";
import { HvarClient, type Upscale, type UpscaleProgress } from "../../packages/client/src/index";

/**
 * The client's job methods against a scripted fetch: each answer is given by the test, and every
 * request the client makes is recorded, so a test reads what went over the wire.
 */
function scripted(...answers: (() => Response)[]) {
  const requests: { method: string; url: string }[] = [];
  const fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    requests.push({ method: init?.method ?? "GET", url: String(input) });
    const answer = answers.shift();
    if (!answer) throw new Error(`unexpected request ${init?.method} ${String(input)}`);
    return answer();
  };
  return { hvar: new HvarClient({ baseUrl: "https://api.hvar.test", apiKey: "hvar_sk_test", fetch, maxRetries: 0 }), requests };
}

const job = (status: Upscale["status"], extra: Partial<Upscale> = {}): Upscale => ({
  id: "j_abcdefghijklmnopqrst",
  status,
  createdAt: "2026-11-30T12:00:00.000Z",
  model: null,
  options: { scales: [2], format: "png", quality: null, temperature: 0, cleanup: 1 },
  input: { width: 40, height: 30, type: "png", megapixels: 0.0012 },
  usage: { inputMp: 0.0012, cacheHit: false, billable: false, billedMp: 0 },
  ...extra,
});
const json = (body: unknown, status = 200) => () => Response.json(body, { status, headers: { "retry-after": "0" } });
const problem = (status: number, code: string) => () =>
  new Response(JSON.stringify({ type: `https://hvar.dev/problems/${code}`, status, code, title: code }), { status, headers: { "content-type": "application/problem+json" } });

describe("HvarClient.list", () => {
  it("asks for the status, limit and cursor given, and answers the page", async () => {
    const page = { data: [job("running")], nextCursor: "MTIzLmpfYQ" };
    const { hvar, requests } = scripted(json(page));
    expect(await hvar.list({ status: "running", limit: 10, cursor: "abc" })).toEqual(page);
    expect(requests).toEqual([{ method: "GET", url: "https://api.hvar.test/v1/upscales?status=running&limit=10&cursor=abc" }]);
  });
});

describe("HvarClient.listAll", () => {
  it("follows nextCursor from page to page until the last", async () => {
    const a = job("succeeded", { id: "j_aaaaaaaaaaaaaaaaaaaa" });
    const b = job("failed", { id: "j_bbbbbbbbbbbbbbbbbbbb" });
    const { hvar, requests } = scripted(json({ data: [a], nextCursor: "next" }), json({ data: [b], nextCursor: null }));
    const seen: string[] = [];
    for await (const upscale of hvar.listAll({ limit: 1 })) seen.push(upscale.id);
    expect(seen).toEqual([a.id, b.id]);
    expect(requests.map((r) => r.url)).toEqual(["https://api.hvar.test/v1/upscales?limit=1", "https://api.hvar.test/v1/upscales?limit=1&cursor=next"]);
  });
});

describe("HvarClient.cancel", () => {
  it("posts to the job's cancel and answers the canceled job", async () => {
    const { hvar, requests } = scripted(json(job("canceled")));
    expect(await hvar.cancel("j_abcdefghijklmnopqrst")).toMatchObject({ status: "canceled" });
    expect(requests).toEqual([{ method: "POST", url: "https://api.hvar.test/v1/upscales/j_abcdefghijklmnopqrst/cancel" }]);
  });

  it("throws HvarError 409 job_already_succeeded for a job that succeeded", async () => {
    const { hvar } = scripted(problem(409, "job_already_succeeded"));
    await expect(hvar.cancel("j_abcdefghijklmnopqrst")).rejects.toMatchObject({ name: "HvarError", status: 409, code: "job_already_succeeded" });
  });
});

describe("HvarClient.delete", () => {
  it("sends DELETE for the job and resolves on 204", async () => {
    const { hvar, requests } = scripted(() => new Response(null, { status: 204 }));
    await expect(hvar.delete("j_abcdefghijklmnopqrst")).resolves.toBeUndefined();
    expect(requests).toEqual([{ method: "DELETE", url: "https://api.hvar.test/v1/upscales/j_abcdefghijklmnopqrst" }]);
  });

  it("throws HvarError 409 job_not_finished for a job still running", async () => {
    const { hvar } = scripted(problem(409, "job_not_finished"));
    await expect(hvar.delete("j_abcdefghijklmnopqrst")).rejects.toMatchObject({ status: 409, code: "job_not_finished" });
  });
});

describe("waiting for a job", () => {
  it("reports the progress of every answer that has one, while the job runs", async () => {
    const quarter = { tilesDone: 1, tilesTotal: 4, fraction: 0.25 };
    const half = { tilesDone: 2, tilesTotal: 4, fraction: 0.5 };
    const { hvar } = scripted(json(job("queued")), json(job("running", { progress: quarter })), json(job("running", { progress: half })), json(job("succeeded")));
    const seen: UpscaleProgress[] = [];
    await hvar.waitFor("j_abcdefghijklmnopqrst", { pollIntervalMs: 0, onProgress: (progress) => seen.push(progress) });
    expect(seen).toEqual([quarter, half]);
  });

  it("throws HvarError job_canceled when the job was canceled", async () => {
    const { hvar } = scripted(json(job("running")), json(job("canceled")));
    await expect(hvar.waitFor("j_abcdefghijklmnopqrst", { pollIntervalMs: 0 })).rejects.toMatchObject({ status: 409, code: "job_canceled", problem: { jobId: "j_abcdefghijklmnopqrst" } });
  });
});
