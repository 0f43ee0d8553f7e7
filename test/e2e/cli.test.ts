import { spawn } from "node:child_process";
import { mkdtemp, readdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { example, imageOrigin, newKey, noisePng, stack } from "./helpers";

/**
 * The hvar command (packages/cli) against the real stack, as a user runs it: a process with
 * HVAR_URL and HVAR_API_KEY in its environment and stderr on a pipe (so progress is plain lines).
 * It runs from source through tsx; the packed tarball is the same code compiled (packages/cli/README.md).
 */
const BIN = fileURLToPath(new URL("../../packages/cli/src/bin.ts", import.meta.url));
/** tsx's loader by its path: the command runs in folders of its own, where `--import tsx` would not resolve. */
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `hvar <args>`; `stderrMatching` resolves once its stderr so far matches (for acting on progress). */
function hvar(args: string[], env: Record<string, string>, cwd?: string): { done: Promise<Run>; stderrMatching(pattern: RegExp): Promise<void> } {
  const child = spawn(process.execPath, ["--import", TSX, BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<Run>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
  return {
    done,
    stderrMatching: (pattern) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(stderr)) resolve();
          else if (child.exitCode !== null) reject(new Error(`hvar exited ${child.exitCode} before ${pattern}: ${stderr}`));
          else setTimeout(check, 20);
        };
        check();
      }),
  };
}

const run = (args: string[], env: Record<string, string>, cwd?: string) => hvar(args, env, cwd).done;

async function user(settings: Record<string, unknown> = {}): Promise<{ env: Record<string, string>; secret: string; dir: string }> {
  const { secret } = await newKey(settings);
  return { env: { HVAR_URL: stack.workerUrl, HVAR_API_KEY: secret }, secret, dir: await mkdtemp(join(tmpdir(), "hvar-cli-e2e-")) };
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

describe("the hvar command against the stack", () => {
  it("upscales a file and downloads each scale as <stem>.x<scale>.<ext>, with progress as plain lines off a terminal", async () => {
    const { env, secret, dir } = await user();
    await writeFile(join(dir, "photo.jpg"), await example("chelsea"));
    const result = await run(["upscale", "photo.jpg", "--scales", "2,4", "--format", "webp", "--quality", "90", "--out", "out"], env, dir);
    expect(result.code).toBe(0);
    expect((await readdir(join(dir, "out"))).sort()).toEqual(["photo.x2.webp", "photo.x4.webp"]);
    const x4 = await sharp(join(dir, "out", "photo.x4.webp")).metadata();
    expect([x4.format, x4.width, x4.height]).toEqual(["webp", 1024, 680]);
    expect(result.stdout).toBe(`photo.jpg -> out/photo.x2.webp (512x340), out/photo.x4.webp (1024x680)\n`);
    expect(result.stderr).toMatch(/^photo\.jpg: (queued|running)$/m);
    expect(result.stderr).not.toContain("\r");
    expect(result.stdout + result.stderr).not.toContain(secret);
  });

  it("upscales an image by URL and prints {input, files, job} with --json", async () => {
    const origin = await imageOrigin({ "/photos/astronaut.jpg": await example("astronaut") });
    try {
      const { env, dir } = await user({ cdnOrigins: [stack.cdnOrigin] });
      const url = origin.url("/photos/astronaut.jpg");
      const result = await run(["upscale", url, "--scales", "1", "--format", "png", "--out", dir, "--json"], env);
      expect(result.code).toBe(0);
      const printed = JSON.parse(result.stdout) as { input: string; files: string[]; job: { status: string; input: { width: number } } };
      expect(printed).toMatchObject({ input: url, files: [join(dir, "astronaut.x1.png")], job: { status: "succeeded", input: { width: 256 } } });
      expect(await sharp(join(dir, "astronaut.x1.png")).metadata()).toMatchObject({ format: "png", width: 256, height: 256 });
    } finally {
      await origin.close();
    }
  });

  it("lists the key's upscales, gets one, deletes it, and then get exits 1 with job_deleted", async () => {
    const { env, dir } = await user();
    await writeFile(join(dir, "noise.png"), await noisePng(48, 32));
    const upscaled = await run(["upscale", "noise.png", "--scales", "2", "--json"], env, dir);
    const { job } = JSON.parse(upscaled.stdout) as { job: { id: string } };

    const listed = await run(["list", "--status", "succeeded", "--json"], env);
    expect((JSON.parse(listed.stdout) as { data: { id: string }[] }).data.map((j) => j.id)).toEqual([job.id]);
    expect((await run(["list"], env)).stdout).toMatch(new RegExp(`^${job.id}  succeeded  \\S+  x2  \\w+  48x32\\n$`));
    expect((await run(["list", "--status", "running"], env)).stdout).toBe("no upscales\n");
    expect((await run(["get", job.id], env)).stdout).toMatch(new RegExp(`^${job.id}  succeeded[^]*\\n  x2 +96x64 `));

    expect(await run(["delete", job.id], env)).toMatchObject({ code: 0, stdout: `${job.id} deleted\n` });
    const gone = await run(["get", job.id], env);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(new RegExp(`^hvar: job_deleted: .* \\(job ${job.id}, request req_\\w+\\)\\n$`));
  });

  it("cancels a running upscale: the waiting upscale exits 1 with job_canceled and writes nothing", async () => {
    const { env, dir } = await user();
    await writeFile(join(dir, "big.png"), await noisePng(1024, 1024));
    const upscaling = hvar(["upscale", "big.png", "--scales", "2", "--out", "out"], env, dir);
    // Its first progress line: the job is on the runner.
    await upscaling.stderrMatching(/big\.png: \d+% /);
    const running = JSON.parse((await run(["list", "--status", "running", "--json"], env)).stdout) as { data: { id: string }[] };
    const id = running.data[0]?.id ?? "";

    const notFinished = await run(["delete", id], env);
    expect(notFinished.code).toBe(1);
    expect(notFinished.stderr).toContain("hvar: job_not_finished: ");
    expect(await run(["cancel", id], env)).toMatchObject({ code: 0, stdout: `${id} canceled\n` });

    const result = await upscaling.done;
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`hvar: big\\.png: job_canceled: The job was canceled \\(job ${id}\\)\\n$`));
    expect(await readdir(join(dir, "out"))).toEqual([]);
  });

  it("shows the key's usage, with the megapixels billed for its upscale", async () => {
    const { env, dir } = await user();
    await writeFile(join(dir, "noise.png"), await noisePng(100, 50));
    expect((await run(["upscale", "noise.png", "--scales", "2", "--out", dir], env, dir)).code).toBe(0);
    const usage = JSON.parse((await run(["usage", "--granularity", "month", "--json"], env)).stdout) as { quota: { settledMp: number }; buckets: { jobs: number }[] };
    expect(usage.quota.settledMp).toBeCloseTo(0.005, 6);
    expect(usage.buckets.map((b) => b.jobs)).toEqual([1]);
    expect((await run(["usage"], env)).stdout).toMatch(/: 0\.005 MP of 1000 MP used, 0 MP held by running jobs\n.*\n {2}\S+ {2}1 jobs, 0\.005 MP billed/);
  });

  it("shows the served model, and whether --temperature and --cleanup change its pictures", async () => {
    const { env } = await user();
    const served = JSON.parse((await run(["model", "--json"], env)).stdout) as { version: string; detail: { sampling: boolean }; cleanup: { adjustable: boolean } };
    const text = (await run(["model"], env)).stdout;
    expect(text).toMatch(new RegExp(`^${served.version.replaceAll(".", "\\.")} {2}scales x1, x2, x4\n {2}limits {2}[\\d.]+ MP in, `));
    expect(text).toContain(served.detail.sampling ? "detail  generated: --temperature draws it" : "detail  none: restoration only");
    expect(text).toContain(served.cleanup.adjustable ? "cleanup  adjustable: --cleanup 0 to 1" : "cleanup  always full");
  });

  describe("exit codes", () => {
    it("1 with the problem's code and title when the API refuses: a wrong key, an unknown job, a file that is not an image", async () => {
      const { env, dir } = await user();
      const wrongKey = await run(["usage"], { ...env, HVAR_API_KEY: "hvar_sk_not-a-real-key" });
      expect(wrongKey.code).toBe(1);
      expect(wrongKey.stderr).toMatch(/^hvar: invalid_api_key: /);
      expect(wrongKey.stderr).not.toContain("hvar_sk_not-a-real-key");

      const unknown = await run(["get", "j_aaaaaaaaaaaaaaaaaaaa", "--json"], env);
      expect(unknown.code).toBe(1);
      expect(JSON.parse(unknown.stderr)).toMatchObject({ error: { code: "job_not_found", title: expect.any(String), requestId: expect.any(String) } });

      await writeFile(join(dir, "broken.png"), "not a png");
      const broken = await run(["upscale", "broken.png"], env, dir);
      expect(broken.code).toBe(1);
      expect(broken.stderr).toMatch(/^hvar: broken\.png: unsupported_media_type: Unsupported image type: .* \(request req_\w+\)$/m);
    });

    it("2 for the command line, a missing file or key, before anything is sent", async () => {
      const { env, dir } = await user();
      expect(await run(["upscale", "photo.jpg", "--scales", "3"], env)).toMatchObject({ code: 2, stderr: expect.stringContaining("--scales is a comma-separated subset") });
      expect(await run(["upscale", join(dir, "missing.jpg")], env)).toMatchObject({ code: 2, stderr: expect.stringContaining("missing.jpg: no such file") });
      expect(await run(["usage"], { HVAR_URL: stack.workerUrl })).toMatchObject({ code: 2, stderr: expect.stringContaining("set HVAR_API_KEY") });
    });

    it("3 when the deployment cannot be reached", async () => {
      const { env } = await user();
      const result = await run(["usage", "--url", `http://127.0.0.1:${await closedPort()}`], env);
      expect(result.code).toBe(3);
      expect(result.stderr).toMatch(/^hvar: network_error: fetch failed: .*ECONNREFUSED/);
    });
  });
});
