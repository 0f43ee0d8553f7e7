/**
 * The worker under `wrangler dev` for the worker benchmarks: fresh local state with its D1 migrations,
 * fresh secrets, the test stub as its runner, and an API key with room for any benchmark. `stop`
 * ends wrangler and the stub and removes the state.
 *
 * (The benchmarks run with node_modules/.bin first on PATH, as npm does, so wrangler gets the
 * repository's Node 22: with an older Node the migrations fail.)
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunnerStub, startRunnerStub } from "../../test/worker/setup/runner-stub";

export const root = new URL("../../", import.meta.url).pathname;
export const wrangler = join(root, "node_modules/.bin/wrangler");
const tsx = join(root, "node_modules/.bin/tsx");
const devServer = join(root, "bench/worker/dev-server.ts");
const env = { ...process.env, WRANGLER_SEND_METRICS: "false" };

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === "string") throw new Error("no free port");
  return address.port;
}

/** Resolves once `url` answers 2xx; throws if `child` exits first or two minutes pass. */
export async function until(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 240; i++) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited (${child.exitCode})`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`${url} did not come up`);
}

/**
 * `wrangler dev` (dev-server.ts) with `args` on a free port; with `inspector`, wrangler's DevTools inspector
 * on another (profile.ts), which the timing runs leave out as production does.
 */
export async function wranglerDev(args: string[], inspector = false): Promise<{ child: ChildProcess; base: string; inspectorPort?: number }> {
  const port = await freePort();
  const inspectorPort = inspector ? await freePort() : undefined;
  const ports = ["--port", String(port), ...(inspectorPort ? ["--inspector-port", String(inspectorPort)] : [])];
  const child = spawn(tsx, [devServer, ...ports, ...args], { cwd: root, env, stdio: "ignore" });
  return { child, base: `http://127.0.0.1:${port}`, inspectorPort };
}

export interface DevWorker {
  base: string;
  /** The worker's process (dev-server.ts: wrangler, and workerd under it). */
  child: ChildProcess;
  /** wrangler's DevTools inspector of the worker (profile.ts), when it was asked for. */
  inspectorPort?: number;
  runner: RunnerStub;
  /** An API key's secret: a quota and a rate limit no benchmark reaches. */
  apiKey: string;
  stop(): Promise<void>;
}

/** Starts the worker with the stub runner; `vars` are more `NAME:value` variables (`--var`). */
export async function startDevWorker(vars: string[] = [], inspector = false): Promise<DevWorker> {
  const state = mkdtempSync(join(tmpdir(), "hvar-bench-"));
  const runnerSecret = randomBytes(24).toString("base64url");
  const adminSecret = randomBytes(24).toString("base64url");
  const envFile = join(state, "bench.vars");
  writeFileSync(envFile, [`ADMIN_SECRET=${adminSecret}`, `RESULT_SIGNING_KEYS={"b1":"${randomBytes(32).toString("base64")}"}`, `RUNNER_HMAC_SECRET=${runnerSecret}`].join("\n"));
  const runner = await startRunnerStub(runnerSecret);
  const migrate = spawnSync(wrangler, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", state], { cwd: root, env, stdio: "ignore" });
  if (migrate.status !== 0) throw new Error("applying D1 migrations failed");
  const { child, base, inspectorPort } = await wranglerDev(["--persist-to", state, "--env-file", envFile, "--var", `RUNNER_URLS:${runner.url}`, ...vars.flatMap((v) => ["--var", v])], inspector);
  const stop = async () => {
    child.kill("SIGTERM");
    await runner.close();
    rmSync(state, { recursive: true, force: true });
  };
  try {
    await until(`${base}/healthz`, child);
    const created = await fetch(`${base}/admin/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminSecret}`, "content-type": "application/json" },
      body: JSON.stringify({ owner: "bench", monthlyQuotaMp: 1e6, rateLimitPerMin: 100_000 }),
    });
    const { secret } = (await created.json()) as { secret: string };
    return { base, child, inspectorPort, runner, apiKey: secret, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
