/**
 * The local stack: the worker under `wrangler dev` (local D1, R2, KV, Durable Objects persisted in a
 * folder, D1 migrations applied) and the runner on the CPU, both healthy, plus a development API key.
 * `npm start` runs this file (scripts/start.sh); the end-to-end tests import `startStack` and start
 * the very same stack on free ports with fresh state in a temporary folder (test/e2e/README.md).
 *
 * @example
 *   const stack = await startStack({ workerPort: 0, runnerPort: 0, stateDir, devVarsFile, devKeyFile });
 *   await fetch(`${stack.workerUrl}/v1/usage`, { headers: { authorization: `Bearer ${stack.devKey.secret}` } });
 *   await stack.stop();
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createWriteStream, existsSync, readFileSync, writeFileSync, type WriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { dirname, join, relative } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { modelName } from "@hvar/contract";
import { discoverModels } from "../gpu-runner/src/model/manifest";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * The settings of the development key that `npm start` creates (admin API, POST /admin/keys). Its
 * CDN origin is the local worker itself, and it accepts unsigned CDN URLs, so the demo page can
 * show working CDN URLs of its example photos without holding the key's CDN secret.
 */
const devKeySettings = (workerUrl: string) => ({
  owner: "local-dev",
  scopes: ["upscale", "usage", "cdn"],
  monthlyQuotaMp: 10_000,
  rateLimitPerMin: 600,
  cdnOrigins: [workerUrl],
  cdnAllowUnsigned: true,
});
const HEALTH_TIMEOUT_MS = 120_000;
/**
 * The runner listens only once its model is loaded and warmed up: about a second for the shipped
 * model, but several seconds for an H-VAR graph (hvar-base 1.0.0: 8 s on a 2-core machine, up to a minute
 * when other work runs on it), so its wait is longer than the worker's. A runner that dies meanwhile
 * is reported at once.
 */
const RUNNER_HEALTH_TIMEOUT_MS = 300_000;

export interface StackOptions {
  /** 0 picks a free port. Default 8787 ($HVAR_WORKER_PORT). */
  workerPort?: number;
  /** 0 picks a free port. Default 8788 ($HVAR_RUNNER_PORT). */
  runnerPort?: number;
  /** The runner's /metrics listener; 0 picks a free port. Default 9464 ($HVAR_METRICS_PORT). */
  metricsPort?: number;
  /** wrangler's persisted local state (D1, R2, KV, Durable Objects). Default `.wrangler/state`. */
  stateDir?: string;
  /** The worker's secrets (dotenv), written with fresh random values when missing. Default `.dev.vars`. */
  devVarsFile?: string;
  /** The development API key (dotenv; `source`-able), created when missing or no longer valid. Default `.dev.key`. */
  devKeyFile?: string;
  /** Where the runner finds `<id>/{model.onnx,manifest.json}`. Default $HVAR_MODELS_DIR, else `gpu-runner/models`. */
  modelsDir?: string;
  /** The runner's local object store. Default the runner's own (`gpu-runner/.data/storage`). */
  runnerStorageDir?: string;
  /** More worker variables (`wrangler dev --var`), e.g. a short JOB_TIMEOUT_S; ALLOW_INSECURE_ORIGINS adds to the worker's own origin. */
  vars?: Record<string, string>;
  /** More runner environment, e.g. HVAR_BATCH_SIZE. */
  runnerEnv?: Record<string, string>;
  /** Output of wrangler and the runner: a file, or (default) this process's stdout with a prefix. */
  logFile?: string;
  /** Fires the worker's cron trigger this often, as Cloudflare would (wrangler dev never does). 0: never. */
  cronIntervalMs?: number;
  /** Starts the runner again when it dies (as a container orchestrator would). Default true. */
  restartRunner?: boolean;
  /**
   * Runner processes sharing the runner's store, as the replicas of one Deployment share a bucket:
   * the first on `runnerPort` and `metricsPort`, the others on free ports. Default 1. The worker's
   * RUNNER_URLS lists them all unless `vars` sets it (to a load balancer in front of them, say).
   */
  runnerReplicas?: number;
  /** Aborting it while the stack starts stops what was started, and the start rejects. */
  signal?: AbortSignal;
}

export interface DevKey {
  id: string;
  secret: string;
  webhookSecret: string;
  /** Signs the key's CDN URLs (absent for keys made before CDN URLs existed). */
  cdnSecret?: string;
}

export interface Stack {
  workerUrl: string;
  runnerUrl: string;
  /** The runner's metrics listener (`<metricsUrl>/metrics`), apart from its API. */
  metricsUrl: string;
  /** ADMIN_SECRET, RESULT_SIGNING_KEYS and RUNNER_HMAC_SECRET as the worker sees them. */
  secrets: Record<string, string>;
  devKey: DevKey & { created: boolean };
  /** The model the runner serves (`<id>@<version>`, also the worker's MODEL_VERSION), or null. */
  model: string | null;
  modelsDir: string;
  /** The runner's process id (it changes when the runner is restarted). */
  runnerPid(): number | undefined;
  /** Every runner replica (the first is `runnerUrl`'s): its API, its metrics listener, its process id now. */
  runners: { url: string; metricsUrl: string; pid(): number | undefined }[];
  /** Resolves when the runner answers /healthz again (after a restart). */
  waitForRunner(): Promise<void>;
  /** Runs the worker's scheduled handler once (webhook retries, the sweep of unfinished jobs). */
  triggerCron(): Promise<void>;
  /** Resolves with a reason when a process of the stack exits on its own. */
  exited: Promise<string>;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (asked from the kernel, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** `NAME=value` lines; blank lines and `#` comments ignored. */
export function readDotenv(path: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (match?.[1]) values[match[1]] = (match[2] ?? "").trim();
  }
  return values;
}

/** Fresh random local secrets, unless the file exists already (it is kept as it is). */
export function ensureDevVars(path: string): { secrets: Record<string, string>; created: boolean } {
  let created = false;
  if (!existsSync(path)) {
    const r = (n: number) => randomBytes(n).toString("base64url");
    const text = [
      "# Local secrets of the worker, written by `npm start`; never commit (git-ignored).",
      `ADMIN_SECRET=${r(24)}`,
      `RESULT_SIGNING_KEYS={"dev1":"${r(32)}"}`,
      `RUNNER_HMAC_SECRET=${r(32)}`,
      "",
    ].join("\n");
    writeFileSync(path, text, { mode: 0o600 });
    created = true;
  }
  const secrets = readDotenv(path);
  for (const name of ["ADMIN_SECRET", "RESULT_SIGNING_KEYS", "RUNNER_HMAC_SECRET"]) {
    if (!secrets[name]) throw new Error(`${path} has no ${name} (delete the file to get fresh secrets)`);
  }
  return { secrets, created };
}

/** The model the runner will serve: $HVAR_MODEL, else the first usable one by folder name (as the runner picks). */
export async function servedModel(modelsDir: string, only = process.env.HVAR_MODEL): Promise<string | null> {
  const { models } = await discoverModels(modelsDir);
  const entry = only ? models.find((m) => m.manifest.id === only) : models[0];
  return entry ? modelName(entry.manifest) : null;
}

/** The development key from its file if the worker still accepts it, else a new one from the admin API. */
export async function ensureDevKey(workerUrl: string, adminSecret: string, path: string): Promise<DevKey & { created: boolean }> {
  if (existsSync(path)) {
    const stored = readDotenv(path);
    if (stored.HVAR_API_KEY && stored.HVAR_API_KEY_ID && stored.HVAR_WEBHOOK_SECRET) {
      const check = await fetch(`${workerUrl}/v1/usage`, { headers: { authorization: `Bearer ${stored.HVAR_API_KEY}` } });
      await check.body?.cancel();
      if (check.ok) {
        const { HVAR_API_KEY_ID: id, HVAR_API_KEY: secret, HVAR_WEBHOOK_SECRET: webhookSecret, HVAR_CDN_SECRET: cdnSecret } = stored;
        return { id, secret, webhookSecret, ...(cdnSecret ? { cdnSecret } : {}), created: false };
      }
      // Otherwise the local state was reset (or the key revoked): make a new one.
    }
  }
  const response = await fetch(`${workerUrl}/admin/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminSecret}`, "content-type": "application/json" },
    body: JSON.stringify(devKeySettings(workerUrl)),
  });
  if (response.status !== 201) throw new Error(`creating the development key failed: ${response.status} ${await response.text()}`);
  const issued = (await response.json()) as { key: { id: string }; secret: string; webhookSecret: string; cdnSecret?: string };
  const text = [
    "# The local stack's development API key, created by `npm start`; never commit (git-ignored).",
    "# Use it with: source .dev.key && curl -H \"authorization: Bearer $HVAR_API_KEY\" ...",
    `HVAR_API_KEY=${issued.secret}`,
    `HVAR_API_KEY_ID=${issued.key.id}`,
    `HVAR_WEBHOOK_SECRET=${issued.webhookSecret}`,
    ...(issued.cdnSecret ? [`HVAR_CDN_SECRET=${issued.cdnSecret}`] : []),
    "",
  ].join("\n");
  writeFileSync(path, text, { mode: 0o600 });
  return { id: issued.key.id, secret: issued.secret, webhookSecret: issued.webhookSecret, ...(issued.cdnSecret ? { cdnSecret: issued.cdnSecret } : {}), created: true };
}

async function waitHealthy(name: string, url: string, alive: () => boolean, timeoutMs = HEALTH_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (!alive()) throw new Error(`${name} exited before it became healthy`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${name} did not become healthy at ${url} within ${timeoutMs / 1000}s`);
}

/** Output of a child: prefixed lines on stdout, or appended to a log file. */
function sink(logFile: string | undefined): { attach(name: string, child: ChildProcess): void; note(line: string): void; portTaken(): boolean; close(): void } {
  const file: WriteStream | undefined = logFile ? createWriteStream(logFile, { flags: "a" }) : undefined;
  let portTaken = false;
  const write = (name: string, line: string) => {
    if (/Address already in use|EADDRINUSE/.test(line)) portTaken = true;
    if (file) file.write(`${name.padEnd(6)} | ${line}\n`);
    else process.stdout.write(`${name.padEnd(6)} | ${line}\n`);
  };
  return {
    attach(name, child) {
      for (const stream of [child.stdout, child.stderr]) {
        if (stream) createInterface({ input: stream }).on("line", (line) => write(name, line));
      }
    },
    note: (line) => write("stack", line),
    portTaken: () => portTaken,
    close: () => file?.end(),
  };
}

/** Runs a command to its end (killed when `signal` aborts); its output is shown only when it fails. */
async function run(command: string, args: string[], env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<void> {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], ...(signal ? { signal } : {}) });
  const chunks: Buffer[] = [];
  child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
  child.stderr.on("data", (chunk: Buffer) => chunks.push(chunk));
  const [code] = (await once(child, "close")) as [number | null];
  if (code !== 0) throw new Error(`${relative(ROOT, command)} ${args.join(" ")} exited with ${code}:\n${Buffer.concat(chunks).toString()}`);
}

/**
 * Stops a child and its own children (each child leads its process group), politely, then firmly:
 * done when no process of the group is left, not merely the child (wrangler's workerd outlives it).
 */
async function terminate(child: ChildProcess | undefined, graceMs = 10_000): Promise<void> {
  const pid = child?.pid;
  if (pid === undefined) return;
  /** Sends `signal` to the group (0 only asks whether any member is left); false when none is. */
  const group = (signal: NodeJS.Signals | 0): boolean => {
    try {
      process.kill(-pid, signal);
      return true;
    } catch {
      return false;
    }
  };
  if (!group("SIGTERM")) return;
  const deadline = Date.now() + graceMs;
  let killed = false;
  // Bounded even after SIGKILL: an orphan's zombie counts as a member until something reaps it.
  while (group(0) && Date.now() < deadline + graceMs) {
    if (!killed && Date.now() > deadline) killed = group("SIGKILL");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A start that failed because a port it had picked was taken before it was bound. */
class PortTakenError extends Error {}
const START_ATTEMPTS = 3;

/**
 * Starts the stack. Free ports (the inspector's always, the others when asked with 0) are picked,
 * released, then bound by wrangler or the runner: another process may take one in between, as when two
 * e2e projects start their stacks at once. Such a start is stopped and tried again on new ports.
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startStackOnce(options);
    } catch (error) {
      if (!(error instanceof PortTakenError) || attempt >= START_ATTEMPTS || options.signal?.aborted) throw error;
    }
  }
}

async function startStackOnce(options: StackOptions): Promise<Stack> {
  const path = (file: string) => join(ROOT, file);
  const stateDir = options.stateDir ?? path(".wrangler/state");
  const devVarsFile = options.devVarsFile ?? path(".dev.vars");
  const devKeyFile = options.devKeyFile ?? path(".dev.key");
  const modelsDir = options.modelsDir ?? process.env.HVAR_MODELS_DIR ?? path("gpu-runner/models");
  const workerPort = options.workerPort === 0 ? await freePort() : (options.workerPort ?? 8787);
  const runnerPort = options.runnerPort === 0 ? await freePort() : (options.runnerPort ?? 8788);
  const metricsPort = options.metricsPort === 0 ? await freePort() : (options.metricsPort ?? 9464);
  const replicaPorts = [{ api: runnerPort, metrics: metricsPort }];
  while (replicaPorts.length < (options.runnerReplicas ?? 1)) replicaPorts.push({ api: await freePort(), metrics: await freePort() });
  const inspectorPort = await freePort();
  const workerUrl = `http://127.0.0.1:${workerPort}`;
  const runnerUrls = replicaPorts.map((ports) => `http://127.0.0.1:${ports.api}`);
  const runnerUrl = runnerUrls[0] as string;
  const metricsUrl = `http://127.0.0.1:${metricsPort}`;
  const output = sink(options.logFile);

  await mkdir(stateDir, { recursive: true });
  await mkdir(dirname(devKeyFile), { recursive: true });
  const { secrets } = ensureDevVars(devVarsFile);
  const model = await servedModel(modelsDir);

  const wranglerBin = path("node_modules/.bin/wrangler");
  // No telemetry and no fetch of Request.cf from cloudflare.com: nothing leaves the machine.
  const wranglerEnv = { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" };
  await run(wranglerBin, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", stateDir], wranglerEnv, options.signal);
  options.signal?.throwIfAborted();

  let stopping = false;
  /** Set once both are healthy: a runner that dies before that is broken, and is not started again. */
  let up = false;
  let reportExit: (reason: string) => void = () => undefined;
  const exited = new Promise<string>((resolve) => (reportExit = resolve));

  // The worker's own origin may be a CDN source over plain http (local only): the demo's example
  // photos. Origins the caller lists are added to it.
  const insecure = [workerUrl, ...(options.vars?.ALLOW_INSECURE_ORIGINS ?? "").split(",")].map((o) => o.trim()).filter(Boolean);
  const vars = { RUNNER_URLS: runnerUrls.join(","), MODEL_VERSION: model ?? "none", ...options.vars, ALLOW_INSECURE_ORIGINS: insecure.join(",") };
  const worker = spawn(
    wranglerBin,
    [
      "dev",
      "--ip", "127.0.0.1",
      "--port", String(workerPort),
      "--inspector-port", String(inspectorPort),
      "--persist-to", stateDir,
      "--env-file", devVarsFile,
      "--show-interactive-dev-session=false",
      ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
    ],
    { cwd: ROOT, env: wranglerEnv, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  output.attach("worker", worker);
  worker.once("exit", (code, signal) => {
    if (!stopping) reportExit(`the worker (wrangler dev) exited (${signal ?? code})`);
  });

  const runnerEnv = (ports: { api: number; metrics: number }): NodeJS.ProcessEnv => ({
    ...process.env,
    HVAR_RUNNER_HOST: "127.0.0.1",
    HVAR_RUNNER_PORT: String(ports.api),
    HVAR_METRICS_PORT: String(ports.metrics),
    HVAR_MODELS_DIR: modelsDir,
    HVAR_DEVICE: process.env.HVAR_DEVICE ?? "cpu",
    RUNNER_HMAC_SECRET: secrets.RUNNER_HMAC_SECRET,
    ...(options.runnerStorageDir ? { HVAR_STORAGE_DIR: options.runnerStorageDir } : {}),
    ...options.runnerEnv,
  });
  /** One runner process at a time per replica, started again when it dies. */
  const replicas: { name: string; url: string; ports: { api: number; metrics: number }; child?: ChildProcess; ready: Promise<void> }[] = replicaPorts.map((ports, index) => ({
    name: replicaPorts.length > 1 ? `runner${index + 1}` : "runner",
    url: runnerUrls[index] as string,
    ports,
    ready: Promise.resolve(),
  }));
  const startRunner = (replica: (typeof replicas)[number]) => {
    // A runner that exits before it ever answered /healthz is broken (bad model, bad settings), not
    // crashed: stop instead of looping. One that was healthy is started again, however soon it died.
    let answered = false;
    // Started as the runner image starts it: libuv's pool sized by the CPUs first (gpu-runner/bin/uv-threads.cjs).
    const child = spawn(process.execPath, ["--require", "./gpu-runner/bin/uv-threads.cjs", "--import", "tsx", "gpu-runner/src/main.ts"], {
      cwd: ROOT,
      env: runnerEnv(replica.ports),
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    replica.child = child;
    output.attach(replica.name, child);
    child.once("exit", (code, signal) => {
      if (stopping) return;
      if (!up || options.restartRunner === false || !answered) {
        reportExit(`the ${replica.name} exited (${signal ?? code})`);
        return;
      }
      output.note(`the ${replica.name} exited (${signal ?? code}); starting it again`);
      startRunner(replica);
    });
    replica.ready = waitHealthy(replica.name, `${replica.url}/healthz`, () => replica.child === child && child.exitCode === null && child.signalCode === null, RUNNER_HEALTH_TIMEOUT_MS);
    replica.ready.then(() => (answered = true), () => undefined);
  };
  if (model) output.note(`the runner is loading ${model}; it answers once the model is ready`);
  for (const replica of replicas) startRunner(replica);
  const first = replicas[0] as (typeof replicas)[number];

  const stop = async () => {
    stopping = true;
    clearInterval(cron);
    await Promise.all([terminate(worker), ...replicas.map((replica) => terminate(replica.child))]);
    output.close();
  };
  const cron =
    (options.cronIntervalMs ?? 0) > 0
      ? setInterval(() => void fetch(`${workerUrl}/cdn-cgi/local/scheduled`).then((r) => r.body?.cancel(), () => undefined), options.cronIntervalMs)
      : undefined;

  const aborted = new Promise<never>((_, reject) => {
    const abort = () => reject(options.signal?.reason);
    if (options.signal?.aborted) abort();
    options.signal?.addEventListener("abort", abort, { once: true });
  });
  aborted.catch(() => undefined);
  try {
    await Promise.race([
      Promise.all([waitHealthy("worker", `${workerUrl}/healthz`, () => worker.exitCode === null && worker.signalCode === null), ...replicas.map((replica) => replica.ready)]),
      aborted,
    ]);
    up = true;
    const devKey = await ensureDevKey(workerUrl, secrets.ADMIN_SECRET as string, devKeyFile);
    return {
      workerUrl,
      runnerUrl,
      metricsUrl,
      secrets,
      devKey,
      model,
      modelsDir,
      runnerPid: () => first.child?.pid,
      runners: replicas.map((replica) => ({ url: replica.url, metricsUrl: `http://127.0.0.1:${replica.ports.metrics}`, pid: () => replica.child?.pid })),
      waitForRunner: () => first.ready,
      triggerCron: async () => {
        const response = await fetch(`${workerUrl}/cdn-cgi/local/scheduled`);
        await response.body?.cancel();
        if (!response.ok) throw new Error(`scheduled handler answered ${response.status}`);
      },
      exited,
      stop,
    };
  } catch (error) {
    await stop();
    if (output.portTaken()) throw new PortTakenError(`a port was taken before it was bound: ${String(error)}`, { cause: error });
    throw error;
  }
}

/** How often `npm start` checks that its parent (npm) is still there. */
const PARENT_CHECK_MS = 500;

/**
 * `npm start`: the stack on the usual ports, URLs printed. Ctrl-C, or SIGINT, SIGTERM or SIGHUP to the
 * `npm start` process (npm forwards the first two here; start.sh execs so that nothing stands between),
 * stops everything, at any moment, startup included; so does npm's own death (SIGHUP or SIGKILL to it),
 * noticed when this process is given another parent. $HVAR_STACK_DIR keeps all local state (wrangler's,
 * .dev.vars, .dev.key, the runner's storage) in that folder instead of the repository.
 */
async function main(): Promise<void> {
  // A terminal that hung up fails every write: that must not cut the shutdown short.
  for (const stream of [process.stdout, process.stderr]) stream.on("error", () => undefined);
  const abort = new AbortController();
  const port = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
  const dir = process.env.HVAR_STACK_DIR;
  const local = {
    stateDir: dir ? join(dir, "state") : join(ROOT, ".wrangler/state"),
    devVarsFile: join(dir ?? ROOT, ".dev.vars"),
    devKeyFile: join(dir ?? ROOT, ".dev.key"),
    ...(dir ? { runnerStorageDir: join(dir, "runner-storage") } : {}),
  };
  const createdVars = !existsSync(local.devVarsFile);
  const starting = startStack({
    workerPort: port("HVAR_WORKER_PORT", 8787),
    runnerPort: port("HVAR_RUNNER_PORT", 8788),
    metricsPort: port("HVAR_METRICS_PORT", 9464),
    cronIntervalMs: 60_000,
    ...local,
    signal: abort.signal,
  });

  let stopping: Promise<void> | undefined;
  const shutdown = (code: number) => {
    stopping ??= (async () => {
      process.stdout.write("\nstack  | stopping\n");
      abort.abort();
      // Either the start rejects, having stopped what it had started, or it gives a stack to stop.
      const stack = await starting.catch(() => undefined);
      await stack?.stop();
      process.exit(code);
    })();
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => shutdown(0));
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && shutdown(0), PARENT_CHECK_MS).unref();

  let stack: Stack;
  try {
    stack = await starting;
  } catch (error) {
    if (abort.signal.aborted) return;
    throw error;
  }
  const rel = (file: string) => relative(process.cwd(), file) || file;
  const demo = `${stack.workerUrl}/demo/`;
  const lines = [
    "",
    "  hvar is running",
    `    API (worker)   ${stack.workerUrl}`,
    `    API reference  ${stack.workerUrl}/docs   (OpenAPI: ${stack.workerUrl}/openapi.json)`,
    `    demo page      ${demo}`,
    `    runner         ${stack.runnerUrl}   (readiness: ${stack.runnerUrl}/readyz, metrics: ${stack.metricsUrl}/metrics)`,
    `    model          ${stack.model ?? `none in ${rel(stack.modelsDir)}: upscales fail until one is there (HVAR_MODELS_DIR=test/gpu-runner/fixtures npm start runs the contract test model)`}`,
  ];
  if (createdVars) lines.push("", `  wrote ${rel(local.devVarsFile)} with fresh local secrets`);
  if (stack.devKey.created) {
    lines.push(
      "",
      `  created a development API key ${stack.devKey.id}, saved in ${rel(local.devKeyFile)} (git-ignored); shown this once:`,
      `    ${stack.devKey.secret}`,
      `  open the demo with it (the key stays in the URL fragment, which browsers never send):`,
      `    ${demo}#key=${stack.devKey.secret}`,
    );
  } else {
    lines.push("", `  development API key ${stack.devKey.id}: in ${rel(local.devKeyFile)} (source ${rel(local.devKeyFile)}; echo $HVAR_API_KEY)`);
  }
  // The examples in README.md and docs/ read the URL and the key from these, whatever the port.
  lines.push("", "  in another terminal, for the examples in README.md and docs/:", `    export HVAR_URL=${stack.workerUrl}; set -a; source ${rel(local.devKeyFile)}; set +a`);
  lines.push("", "  Ctrl-C stops everything.", "");
  process.stdout.write(lines.join("\n") + "\n");

  const reason = await stack.exited;
  if (stopping) return;
  process.stderr.write(`stack  | ${reason}; stopping\n`);
  shutdown(1);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error: unknown) => {
    process.stderr.write(`start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
