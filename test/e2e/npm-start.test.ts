import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ROOT, freePort } from "../../scripts/stack";
import { E2E_MODELS_DIR } from "./setup";
import { sleep } from "./helpers";

/**
 * `npm start` as a developer runs it, on free ports with its state in a temporary folder
 * (HVAR_STACK_DIR), and one signal sent to the npm process alone, as `kill <pid>` or a process
 * manager sends it: everything it started (the stack script, wrangler and its workerd, the runner)
 * must be gone afterwards and the ports free, as after Ctrl-C (which signals the whole group).
 */

/** A stack start (up to minutes on a busy 2-core machine), the stop, and the checks. */
const START_TIMEOUT_MS = 420_000;

interface Proc {
  pid: number;
  ppid: number;
  args: string;
}

/** Every live process (zombies, which hold nothing, left out). */
function processes(): Proc[] {
  return execFileSync("ps", ["-e", "-o", "pid=,ppid=,stat=,args="], { encoding: "utf8" })
    .split("\n")
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null && !m[3]?.startsWith("Z"))
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[4] ?? "" }));
}

/** The process and all its descendants, detached ones included (they keep their parent). */
function tree(root: number): Proc[] {
  const all = processes();
  const found = all.filter((p) => p.pid === root);
  for (let i = 0; i < found.length; i++) found.push(...all.filter((p) => p.ppid === found[i]?.pid));
  return found;
}

async function portFree(port: number): Promise<boolean> {
  const server = createServer();
  server.listen(port, "127.0.0.1");
  const outcome = await Promise.race([once(server, "listening").then(() => true), once(server, "error").then(() => false)]);
  if (outcome) await new Promise((resolve) => server.close(resolve));
  return outcome;
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(200);
  }
}

interface Started {
  npm: ChildProcess;
  ports: number[];
  output: () => string;
  /** HVAR_STACK_DIR: everything the stack writes. */
  dir: string;
  /** npm and its descendants when the signal was sent. */
  seen: Proc[];
}

const running: Started[] = [];

async function npmStart(): Promise<Started> {
  const dir = await mkdtemp(join(tmpdir(), "hvar-npm-start-"));
  const ports = [await freePort(), await freePort(), await freePort()];
  const npm = spawn("npm", ["start"], {
    cwd: ROOT,
    env: {
      ...process.env,
      HVAR_WORKER_PORT: String(ports[0]),
      HVAR_RUNNER_PORT: String(ports[1]),
      HVAR_METRICS_PORT: String(ports[2]),
      HVAR_STACK_DIR: dir,
      HVAR_MODELS_DIR: E2E_MODELS_DIR,
      HVAR_NO_SETUP: "1",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  for (const stream of [npm.stdout, npm.stderr]) stream?.on("data", (chunk: Buffer) => (text += chunk.toString()));
  const started: Started = { npm, ports, output: () => text, dir, seen: [] };
  running.push(started);
  return started;
}

/** Sends `signal` to npm alone, then waits until npm and everything seen under it have ended. */
async function signalAndWatch(started: Started, signal: NodeJS.Signals): Promise<void> {
  const { npm } = started;
  const seen = tree(npm.pid as number);
  started.seen = seen;
  // Not a test that passes because nothing was started: the stack script, wrangler and the runner are there.
  expect(seen.some((p) => p.args.includes("scripts/stack.ts"))).toBe(true);
  expect(seen.some((p) => p.args.includes("wrangler") && p.args.includes(" dev "))).toBe(true);
  expect(seen.some((p) => p.args.includes("gpu-runner/src/main.ts"))).toBe(true);
  const inspector = /--inspector-port (\d+)/.exec(seen.map((p) => p.args).join("\n"))?.[1];

  const exited = npm.exitCode !== null || npm.signalCode !== null ? Promise.resolve() : once(npm, "exit");
  process.kill(npm.pid as number, signal);
  await Promise.race([exited, sleep(30_000).then(() => Promise.reject(new Error(`npm did not exit after ${signal}\n${started.output().slice(-3000)}`)))]);
  const pids = new Set(seen.map((p) => p.pid));
  const left = () => processes().filter((p) => pids.has(p.pid));
  await until(`nothing started by npm is left (${JSON.stringify(left())})`, () => left().length === 0, 30_000);
  for (const port of [...started.ports, ...(inspector ? [Number(inspector)] : [])]) expect(await portFree(port)).toBe(true);
}

afterEach(async () => {
  // A failed test must not leave a stack behind: what it saw and is still alive (the same pid with
  // the same command line, not a recycled pid) goes now.
  for (const { npm, seen, dir } of running.splice(0)) {
    if (npm.exitCode === null && npm.signalCode === null) npm.kill("SIGKILL");
    const alive = processes();
    for (const p of seen) {
      if (alive.some((q) => q.pid === p.pid && q.args === p.args)) process.kill(p.pid, "SIGKILL");
    }
    await rm(dir, { recursive: true, force: true });
  }
});

describe("npm start and signals", () => {
  it.each(["SIGINT", "SIGTERM", "SIGHUP"] as const)("%s to the npm process stops the whole stack and frees its ports", async (signal) => {
    const started = await npmStart();
    await until("the stack is up", () => started.output().includes("hvar is running"), 330_000);
    await signalAndWatch(started, signal);
  }, START_TIMEOUT_MS);

  it("SIGTERM while the stack is still starting stops what was started", async () => {
    const started = await npmStart();
    // The runner and wrangler are spawned; the worker is not healthy yet.
    // At once when the runner is spawned: wrangler is then still building the worker, not yet healthy.
    await until("the runner is spawned", () => tree(started.npm.pid as number).some((p) => p.args.includes("gpu-runner/src/main.ts")), 120_000);
    await signalAndWatch(started, "SIGTERM");
  }, START_TIMEOUT_MS);
});
