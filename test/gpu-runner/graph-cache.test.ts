import { copyFile, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { describe, expect, it } from "vitest";
import { optimizedGraphPath } from "../../gpu-runner/src/model/graph-cache";
import { discoverModels, type ModelEntry } from "../../gpu-runner/src/model/manifest";
import { ModelSession } from "../../gpu-runner/src/model/session";
import { FIXTURE_MODELS_DIR, silentLog, tempDir } from "./helpers";

const cpu = { device: "cpu", cudaDeviceId: 0, cpuThreads: 1 } as const;
const CONTRACT = join(FIXTURE_MODELS_DIR, "contract-model");
const DETERMINISTIC = join(FIXTURE_MODELS_DIR, "deterministic", "contract-model");

/** `<modelsDir>/m` holding a fixture's graph and manifest under the id `m`, as the runner discovers it. */
async function modelAs(modelsDir: string, fixture: string): Promise<ModelEntry> {
  const manifest = JSON.parse(await readFile(join(fixture, "manifest.json"), "utf8")) as Record<string, unknown>;
  await rm(join(modelsDir, "m"), { recursive: true, force: true });
  await mkdir(join(modelsDir, "m"), { recursive: true });
  await copyFile(join(fixture, "model.onnx"), join(modelsDir, "m", "model.onnx"));
  await writeFile(join(modelsDir, "m", "manifest.json"), JSON.stringify({ ...manifest, id: "m" }));
  const { models, rejected } = await discoverModels(modelsDir);
  expect(rejected).toEqual([]);
  return models[0] as ModelEntry;
}

async function setup() {
  const [modelsDir, cache] = await Promise.all([tempDir("hvar-models-"), tempDir("hvar-graphs-")]);
  const entry = await modelAs(modelsDir, CONTRACT);
  const path = optimizedGraphPath(cache, { id: "m", sha256: entry.manifest.sha256, provider: "cpu" });
  return { modelsDir, cache, entry, path, load: (e = entry) => ModelSession.load(e, { ...cpu, graphCacheDir: cache }, silentLog) };
}

async function x4Of(session: ModelSession): Promise<Float32Array> {
  const t = session.tile;
  const lr = Float32Array.from({ length: 3 * t * t }, (_, i) => (i % 97) / 97);
  return (await session.run(lr, new Float32Array(session.tokens).fill(0.5), 1, { temperature: 0, cleanup: 1 })).x4;
}

describe("optimized graph cache", () => {
  it("writes the optimized graph at the first load and loads it, computing the same, at the next", async () => {
    const { cache, path, load } = await setup();
    const first = await load();
    expect(first.graph).toEqual({ path, reused: false });
    expect(await readdir(cache)).toEqual([basename(path)]);
    const written = (await stat(path)).mtimeMs;

    const second = await load();
    expect(second.graph).toEqual({ path, reused: true });
    expect((await stat(path)).mtimeMs).toBe(written);
    expect(await x4Of(second)).toEqual(await x4Of(first));
    await Promise.all([first.release(), second.release()]);
  });

  it("gives a changed model file its own graph and deletes the stale one", async () => {
    const { modelsDir, cache, path, load } = await setup();
    await (await load()).release();
    const changed = await modelAs(modelsDir, DETERMINISTIC);
    const session = await load(changed);
    const fresh = optimizedGraphPath(cache, { id: "m", sha256: changed.manifest.sha256, provider: "cpu" });
    expect(fresh).not.toBe(path);
    expect(session.graph).toEqual({ path: fresh, reused: false });
    expect(await readdir(cache)).toEqual([basename(fresh)]);
    expect(session.tokens).toBe(0); // it runs the new model, not the cached old one
    await session.release();
  });

  it("never loads a graph written by another onnxruntime version", async () => {
    const { cache, entry, path, load } = await setup();
    const other = optimizedGraphPath(cache, { id: "m", sha256: entry.manifest.sha256, provider: "cpu" }, "0.0.1");
    expect(other).not.toBe(path);
    await writeFile(other, "a graph onnxruntime 0.0.1 wrote");
    const session = await load();
    expect(session.graph).toEqual({ path, reused: false });
    expect(await readdir(cache)).toEqual([basename(path)]);
    await session.release();
  });

  it("replaces a cached graph that onnxruntime cannot load", async () => {
    const { path, load } = await setup();
    await writeFile(path, "not a graph");
    const session = await load();
    expect(session.graph).toEqual({ path, reused: false });
    const again = await load();
    expect(again.graph).toEqual({ path, reused: true });
    await Promise.all([session.release(), again.release()]);
  });

  it("loads the model without a cache when its folder cannot be created", async () => {
    const { entry } = await setup();
    const file = join(await tempDir("hvar-graphs-"), "a-file");
    await writeFile(file, "");
    const session = await ModelSession.load(entry, { ...cpu, graphCacheDir: join(file, "graphs") }, silentLog);
    expect(session.graph).toBeUndefined();
    expect((await x4Of(session)).length).toBe(3 * 16 * session.tile * session.tile);
    await session.release();
  });
});
