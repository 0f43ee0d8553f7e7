import { spawnSync } from "node:child_process";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../gpu-runner/src/config";

const root = fileURLToPath(new URL("../../", import.meta.url));

/** What a Node process started as the runner image starts it (uv-threads.cjs first) prints for `script`, in `env`. */
function inRunnerProcess(script: string, env: Record<string, string>): string {
  const inherited = { ...process.env };
  delete inherited.UV_THREADPOOL_SIZE;
  delete inherited.HVAR_CPUS;
  const run = spawnSync(process.execPath, ["--require", "./gpu-runner/bin/uv-threads.cjs", "--import", "tsx", "--input-type=module", "-e", script], {
    cwd: root,
    env: { ...inherited, ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  expect(run.status, run.stderr).toBe(0);
  return run.stdout.trim();
}

const printPool = "console.log(process.env.UV_THREADPOOL_SIZE)";

/**
 * Holds `held` of libuv's threads (each opens a FIFO for reading, which waits for a writer), asks for a
 * file's status, and lets them go 200 ms later: prints "stat,release" if the status came on a thread
 * still free, "release,stat" if it had to wait for one of those.
 */
const holdPoolThreads = (held: number) => `
  import { execFileSync } from "node:child_process";
  import { closeSync, mkdtempSync, openSync } from "node:fs";
  import { open, stat } from "node:fs/promises";
  import { tmpdir } from "node:os";
  import { join } from "node:path";
  import { setTimeout } from "node:timers/promises";
  const dir = mkdtempSync(join(tmpdir(), "hvar-pool-"));
  const fifos = Array.from({ length: ${held} }, (_, i) => join(dir, "fifo" + i));
  for (const fifo of fifos) execFileSync("mkfifo", [fifo]);
  const readers = fifos.map((fifo) => open(fifo, "r"));
  await setTimeout(50);
  const order = [];
  const statted = stat(dir).then(() => order.push("stat"));
  await setTimeout(200);
  order.push("release");
  const writers = fifos.map((fifo) => openSync(fifo, "w"));
  await statted;
  for (const reader of await Promise.all(readers)) await reader.close();
  writers.forEach(closeSync);
  console.log(order.join(","));
`;
const printCpus = 'const { CPUS } = await import("./gpu-runner/src/cpus.ts"); console.log(CPUS)';
const printVipsThreads = 'const { VIPS_THREADS } = await import("./gpu-runner/src/image/encode-slots.ts"); const { default: sharp } = await import("sharp"); console.log(VIPS_THREADS, sharp.concurrency())';

describe("the runner's threads, sized by its CPUs (HVAR_CPUS)", () => {
  it("gives libuv's pool two threads more than the CPUs, so that encodes, which take all but two, run on every CPU", () => {
    expect(inRunnerProcess(printPool, { HVAR_CPUS: "6" })).toBe("8");
    // The pool itself, not only the variable: 3 threads for 1 CPU, so a fourth task waits only when 3 are held.
    expect(inRunnerProcess(holdPoolThreads(2), { HVAR_CPUS: "1" })).toBe("stat,release");
    expect(inRunnerProcess(holdPoolThreads(3), { HVAR_CPUS: "1" })).toBe("release,stat");
  });

  it("leaves a pool size set by hand as it is", () => {
    expect(inRunnerProcess(printPool, { HVAR_CPUS: "6", UV_THREADPOOL_SIZE: "3" })).toBe("3");
  });

  it("counts the process's cores when HVAR_CPUS is unset, in the pool and in the runner alike", () => {
    expect(inRunnerProcess(printPool, {})).toBe(String(availableParallelism() + 2));
    expect(inRunnerProcess(printCpus, {})).toBe(String(availableParallelism()));
  });

  it("reads HVAR_CPUS in the runner as the pool does", () => {
    expect(inRunnerProcess(printCpus, { HVAR_CPUS: "6" })).toBe("6");
  });

  it("gives each image two of libvips' threads where it has two CPUs, where sharp's glibc default is one", () => {
    expect(inRunnerProcess(printVipsThreads, { HVAR_CPUS: "1" })).toBe("1 1");
    expect(inRunnerProcess(printVipsThreads, { HVAR_CPUS: "16" })).toBe("2 2");
  });

  it("holds as many queue jobs as it has CPUs unless told, as each job encodes one output at a time", () => {
    expect(loadConfig({ HVAR_CPUS: "6" }).HVAR_QUEUE_CONCURRENCY).toBe(6);
    expect(loadConfig({}).HVAR_QUEUE_CONCURRENCY).toBe(availableParallelism());
    expect(loadConfig({ HVAR_CPUS: "6", HVAR_QUEUE_CONCURRENCY: "2" }).HVAR_QUEUE_CONCURRENCY).toBe(2);
  });

  it("refuses to start on an HVAR_CPUS that is not a whole number of CPUs", () => {
    for (const HVAR_CPUS of ["0", "2.5", "two"]) expect(() => loadConfig({ HVAR_CPUS })).toThrow(/HVAR_CPUS/);
    expect(loadConfig({ HVAR_CPUS: "12" }).HVAR_CPUS).toBe(12);
  });
});
