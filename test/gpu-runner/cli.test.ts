import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { runCli } from "../../gpu-runner/src/cli/main";
import { ProgressBar } from "../../gpu-runner/src/cli/progress";
import { ORT_VERSION } from "../../gpu-runner/src/model/graph-cache";
import { RunnerConfigSchema } from "../../gpu-runner/src/config";
import { FIXTURE_MODELS_DIR, rawImage, tempDir } from "./helpers";

function capture(isTTY = false) {
  const chunks: string[] = [];
  return { isTTY, chunks, write: (chunk: string) => chunks.push(chunk), text: () => chunks.join("") };
}

async function workspace() {
  const dir = await tempDir("hvar-cli-");
  const photo = join(dir, "photo.jpg");
  await rawImage(50, 40, (x, y) => [x * 5, y * 6, 120]).jpeg().toFile(photo);
  return { dir, photo, out: join(dir, "out") };
}

const run = (args: string[], stderr = capture()) => runCli(args, { stdout: capture(), stderr });

describe("hvar-runner upscale", () => {
  it("writes one file per requested scale in the requested format", async () => {
    const { photo, out } = await workspace();
    expect(await run(["upscale", photo, "--out", out, "--scales", "2,4", "--format", "webp", "--models-dir", FIXTURE_MODELS_DIR])).toBe(0);
    expect((await readdir(out)).sort()).toEqual(["photo.x2.webp", "photo.x4.webp"]);
    const x4 = await sharp(join(out, "photo.x4.webp")).metadata();
    expect([x4.format, x4.width, x4.height]).toEqual(["webp", 200, 160]);
  });

  it("upscales at the --cleanup asked: at 0 the model's x1 is the input itself", async () => {
    const { dir, out } = await workspace();
    const photo = join(dir, "photo.png");
    await rawImage(50, 40, (x, y) => [(x * 37 + y * 11) % 256, (x * 5) % 256, (y * 29) % 256]).png().toFile(photo);
    const x1 = async (cleanup: string) => {
      expect(await run(["upscale", photo, "--out", out, "--scales", "1", "--cleanup", cleanup, "--models-dir", FIXTURE_MODELS_DIR])).toBe(0);
      return sharp(join(out, "photo.x1.png")).raw().toBuffer();
    };
    const input = await sharp(photo).raw().toBuffer();
    expect((await x1("0")).equals(input)).toBe(true);
    expect((await x1("1")).equals(input)).toBe(false);
  });

  it("draws a progress bar over tiles on a terminal", async () => {
    const { photo, out } = await workspace();
    const stderr = capture(true);
    await run(["upscale", photo, "--out", out, "--scales", "1", "--models-dir", FIXTURE_MODELS_DIR], stderr);
    expect(stderr.text()).toMatch(/\rphoto\.jpg \[#+\] (\d+)\/\1 tiles/);
  });

  it("off a terminal, prints a plain line per tenth of the tiles, ending at 100%", async () => {
    const { photo, out } = await workspace();
    const stderr = capture(false);
    expect(await run(["upscale", photo, "--out", out, "--scales", "1", "--models-dir", FIXTURE_MODELS_DIR], stderr)).toBe(0);
    const lines = stderr.text().split("\n").filter((line) => line.startsWith("photo.jpg: "));
    expect(lines.at(-1)).toMatch(/^photo\.jpg: 100% \((\d+)\/\1 tiles\)$/);
    const percents = lines.map((line) => Number(/: (\d+)%/.exec(line)?.[1]));
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(new Set(percents).size).toBe(percents.length);
    expect(stderr.text()).not.toContain("\r");
  });

  it("reports a bad file, goes on with the others and exits 1", async () => {
    const { dir, photo, out } = await workspace();
    const broken = join(dir, "broken.png");
    await writeFile(broken, "not a png");
    const stderr = capture();
    expect(await run(["upscale", broken, photo, "--out", out, "--scales", "2", "--models-dir", FIXTURE_MODELS_DIR], stderr)).toBe(1);
    expect(stderr.text()).toContain("broken.png: failed: image_unsupported_type");
    expect(await readdir(out)).toEqual(["photo.x2.png"]);
  });

  it("has the HTTP runner's defaults: it refuses an input over the runner's pixel limit", async () => {
    const { dir, out } = await workspace();
    const limit = RunnerConfigSchema.parse({}).HVAR_MAX_INPUT_PIXELS;
    const large = join(dir, "large.png");
    await sharp({ create: { width: Math.floor(limit / 1024) + 1, height: 1024, channels: 3, background: "#808080" } }).png().toFile(large);
    const stderr = capture();
    expect(await run(["upscale", large, "--out", out, "--models-dir", FIXTURE_MODELS_DIR], stderr)).toBe(1);
    expect(stderr.text()).toMatch(new RegExp(`large\\.png: failed: image_too_large: .* the limit is ${limit} pixels`));
  });

  it.each([
    [["upscale", "a.png", "--scales", "3"], /scales is a comma-separated subset/],
    [["upscale", "--out", "x"], /no input image/],
    [["upscale", "a.png", "--bogus", "1"], /Unknown option/],
    [["resize", "a.png"], /unknown command 'resize'/],
  ])("exits 2 with usage for %j", async (args, message) => {
    const stderr = capture();
    expect(await run(args, stderr)).toBe(2);
    expect(stderr.text()).toMatch(message);
    expect(stderr.text()).toContain("Usage: hvar-runner upscale");
  });

  it("--version prints the runner's and onnxruntime's versions and the model it would load", async () => {
    const stdout = capture();
    expect(await runCli(["--version", "--models-dir", FIXTURE_MODELS_DIR], { stdout, stderr: capture() })).toBe(0);
    const { version } = JSON.parse(await readFile(join(import.meta.dirname, "../../gpu-runner/package.json"), "utf8")) as { version: string };
    expect(stdout.text()).toBe(`hvar-runner ${version} (onnxruntime ${ORT_VERSION}, node ${process.versions.node})\nmodel contract-fixture 0.0.0-fixture (tile 32, fp32) (${join(FIXTURE_MODELS_DIR, "contract-model", "model.onnx")})\n`);
  });

  it("--version says so when there is no model to load", async () => {
    const { dir } = await workspace();
    const stdout = capture();
    expect(await runCli(["--version", "--models-dir", join(dir, "none")], { stdout, stderr: capture() })).toBe(0);
    expect(stdout.text()).toMatch(/\nmodel: none usable in .*none\n$/);
  });

  it("exits 1 and says where it looked when there is no model", async () => {
    const { photo, dir } = await workspace();
    const stderr = capture();
    expect(await run(["upscale", photo, "--models-dir", join(dir, "none")], stderr)).toBe(1);
    expect(stderr.text()).toMatch(/no usable model in .*none/);
  });

  describe("checks what it is given before it loads a model", () => {
    /** A model folder discovery accepts (manifest and sha256 agree) whose graph onnxruntime cannot load. */
    async function unloadableModels(): Promise<string> {
      const dir = await tempDir("hvar-unloadable-");
      const graph = Buffer.from("not an onnx graph");
      const manifest = JSON.parse(await readFile(join(FIXTURE_MODELS_DIR, "contract-model", "manifest.json"), "utf8")) as Record<string, unknown>;
      await mkdir(join(dir, "broken"));
      await writeFile(join(dir, "broken", "model.onnx"), graph);
      await writeFile(join(dir, "broken", "manifest.json"), JSON.stringify({ ...manifest, id: "broken", sha256: createHash("sha256").update(graph).digest("hex") }));
      // Whatever gets as far as loading it fails.
      const { photo, out } = await workspace();
      await expect(run(["upscale", photo, "--out", out, "--models-dir", dir])).rejects.toThrow();
      return dir;
    }

    it("reports a missing file and a folder, and exits 1 without loading the model", async () => {
      const [models, { dir, out }] = await Promise.all([unloadableModels(), workspace()]);
      const stderr = capture();
      expect(await run(["upscale", join(dir, "missing.png"), dir, "--out", out, "--models-dir", models], stderr)).toBe(1);
      expect(stderr.text()).toContain("missing.png: failed: no such file");
      expect(stderr.text()).toContain(`${dir}: failed: not a file`);
    });

    it("refuses an image over --max-pixels from its header, without loading the model", async () => {
      const [models, { photo, out }] = await Promise.all([unloadableModels(), workspace()]);
      const stderr = capture();
      expect(await run(["upscale", photo, "--out", out, "--max-pixels", "1000", "--models-dir", models], stderr)).toBe(1);
      expect(stderr.text()).toMatch(/photo\.jpg: failed: image_too_large: The image is 50x40 \(2000 pixels\)/);
    });

    it("exits 2 with usage for an overlap over half the model's tile, without loading the model", async () => {
      const [models, { photo, out }] = await Promise.all([unloadableModels(), workspace()]);
      const stderr = capture();
      expect(await run(["upscale", photo, "--out", out, "--overlap", "17", "--models-dir", models], stderr)).toBe(2);
      expect(stderr.text()).toContain("--overlap 17 is more than half the tile of model broken (32)");
    });

    it("exits 1 when the output folder cannot be made, without loading the model", async () => {
      const [models, { dir, photo }] = await Promise.all([unloadableModels(), workspace()]);
      const stderr = capture();
      expect(await run(["upscale", photo, "--out", join(dir, "photo.jpg", "out"), "--models-dir", models], stderr)).toBe(1);
      expect(stderr.text()).toMatch(/cannot create the output folder .*photo\.jpg\/out/);
    });
  });
});

describe("the runner CLI's progress off a terminal", () => {
  it("is one line per tenth of the tiles, however many tiles finish between updates", () => {
    const out = capture(false);
    const bar = new ProgressBar(out, "a.png");
    for (const done of [0, 1, 2, 7, 7, 20, 39, 40]) bar.update(done, 40);
    bar.finish("a.png: 40 tiles -> a.x2.png");
    expect(out.chunks).toEqual(["a.png: 0% (0/40 tiles)\n", "a.png: 10% (7/40 tiles)\n", "a.png: 50% (20/40 tiles)\n", "a.png: 90% (39/40 tiles)\n", "a.png: 100% (40/40 tiles)\n", "a.png: 40 tiles -> a.x2.png\n"]);
  });
});
