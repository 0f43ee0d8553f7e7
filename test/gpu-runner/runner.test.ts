import { writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hmacSecret, loadConfig } from "../../gpu-runner/src/config";
import { assembleRunner, replicaId } from "../../gpu-runner/src/runner";
import { signRequest } from "../../gpu-runner/src/server/auth";
import type { RunnerJob as Job } from "@hvar/contract";
import { LocalStore } from "../../gpu-runner/src/storage/local";
import { FIXTURE_MODELS_DIR, rawImage, silentLog, tempDir } from "./helpers";

const SECRET = "runner-test-secret-0123456789";

async function fixtureRunner() {
  const storage = await tempDir("hvar-runner-");
  const config = loadConfig({ HVAR_MODELS_DIR: FIXTURE_MODELS_DIR, HVAR_STORAGE_DIR: storage, HVAR_DEVICE: "cpu", HVAR_CPU_THREADS: "1" });
  return { storage, ...(await assembleRunner(config, SECRET, silentLog)) };
}

describe("assembled runner (contract fixture model, local storage)", () => {
  it("serves a job end to end and, on shutdown, finishes it before resolving", async () => {
    const { app, shutdown, storage } = await fixtureRunner();
    const body = await rawImage(70, 50, (x, y) => [x * 3, y * 4, 90]).png().toBuffer();
    const path = "/v1/jobs?id=j_drain&scales=1,4";
    expect((await app.request(path, { method: "POST", body, headers: signRequest(SECRET, "POST", path, body) })).status).toBe(202);
    const stopping = shutdown();
    expect((await app.request("/readyz")).status).toBe(503);
    await stopping;
    const record = await new LocalStore(storage).get("jobs/j_drain.json");
    const job = JSON.parse(record?.bytes.toString() ?? "{}") as Job;
    expect(job.status).toBe("succeeded");
    expect(job.outputs?.map((o) => [o.width, o.height])).toEqual([
      [70, 50],
      [280, 200],
    ]);
  });

  it("is not ready, and refuses jobs with 503, when its models folder has no usable model", async () => {
    const config = loadConfig({ HVAR_MODELS_DIR: await tempDir("hvar-empty-") });
    const { app } = await assembleRunner(config, SECRET, silentLog);
    expect((await app.request("/readyz")).status).toBe(503);
    expect((await app.request("/v1/jobs/x", { headers: signRequest(SECRET, "GET", "/v1/jobs/x", new Uint8Array()) })).status).toBe(503);
  });
});

describe("configuration", () => {
  it("refuses s3 storage without its endpoint and credentials, naming them", () => {
    expect(() => loadConfig({ HVAR_STORAGE: "s3" })).toThrow(/HVAR_S3_ENDPOINT/);
  });

  it("names the replica by HVAR_REPLICA_ID, else by host and port, which a restart keeps", () => {
    expect(replicaId(loadConfig({ HVAR_REPLICA_ID: "hvar-runner-7d9f-abc12" }))).toBe("hvar-runner-7d9f-abc12");
    expect(replicaId(loadConfig({ HVAR_RUNNER_PORT: "8790" }))).toBe(`${hostname()}:8790`);
  });

  it("refuses a stale bound under twice the heartbeat: an owner one heartbeat late must not look dead", () => {
    expect(() => loadConfig({ HVAR_JOB_HEARTBEAT_MS: "1000", HVAR_JOB_STALE_MS: "1500" })).toThrow(/HVAR_JOB_STALE_MS/);
    expect(loadConfig({})).toMatchObject({ HVAR_JOB_HEARTBEAT_MS: 1000, HVAR_JOB_STALE_MS: 5000 });
  });

  it("takes the HMAC secret from the environment first, then from the local .dev.vars", async () => {
    const dir = await tempDir("hvar-vars-");
    const devVars = join(dir, ".dev.vars");
    await writeFile(devVars, "ADMIN_SECRET=x\nRUNNER_HMAC_SECRET=from-dev-vars-0123456789\n");
    expect(hmacSecret(loadConfig({ RUNNER_HMAC_SECRET: "from-environment-0123456789" }), devVars)).toBe("from-environment-0123456789");
    expect(hmacSecret(loadConfig({}), devVars)).toBe("from-dev-vars-0123456789");
    expect(hmacSecret(loadConfig({}), join(dir, "absent"))).toBeUndefined();
  });
});
