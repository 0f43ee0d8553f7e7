import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Worker } from "node:worker_threads";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { discoverModels, type ModelEntry } from "../../gpu-runner/src/model/manifest";
import { ModelSession } from "../../gpu-runner/src/model/session";
import { FIXTURE_MODELS_DIR, silentLog, tempDir } from "./helpers";

const cpu = { device: "cpu", cudaDeviceId: 0, cpuThreads: 1 } as const;

async function fixtureEntry(dir = FIXTURE_MODELS_DIR): Promise<ModelEntry> {
  const { models, rejected } = await discoverModels(dir);
  expect(rejected).toEqual([]);
  return models[0] as ModelEntry;
}

const DETERMINISTIC_DIR = join(FIXTURE_MODELS_DIR, "deterministic");
/** The shipped model: its batches take long enough (a 384 px tile) to watch the caller's thread meanwhile. */
const SHIPPED_DIR = fileURLToPath(new URL("../../gpu-runner/models", import.meta.url));
const FITTED_DIR = join(FIXTURE_MODELS_DIR, "fitted");

/** A fixture's graph under another manifest, as the runner would discover it. */
async function withManifest(manifest: Record<string, unknown>, source = FIXTURE_MODELS_DIR): Promise<ModelEntry> {
  const entry = await fixtureEntry(source);
  const dir = await tempDir("hvar-model-");
  await mkdir(join(dir, "wrong"));
  await copyFile(entry.onnxPath, join(dir, "wrong", "model.onnx"));
  await writeFile(join(dir, "wrong", "manifest.json"), JSON.stringify(manifest));
  return (await discoverModels(dir)).models[0] as ModelEntry;
}

describe("ModelSession", () => {
  it("loads the contract fixture on the CPU provider and runs a batch of two", async () => {
    const entry = await fixtureEntry();
    const session = await ModelSession.load(entry, cpu, silentLog);
    expect(session.provider).toBe("cpu");
    const t = session.tile;
    const lr = new Float32Array(2 * 3 * t * t).fill(0.25);
    const out = await session.run(lr, new Float32Array(2 * session.tokens), 2, { temperature: 0, cleanup: 1 });
    expect(out.x1.length).toBe(2 * 3 * t * t);
    expect(out.x2.length).toBe(2 * 3 * 4 * t * t);
    expect(out.x4.length).toBe(2 * 3 * 16 * t * t);
    expect(out.x4[0]).toBeCloseTo(0.25, 6);
    await session.release();
  });

  it("falls back to the CPU when CUDA is asked for only if available (auto)", async () => {
    // onnxruntime-node's bundled build has no CUDA provider; on a CUDA host this loads on the GPU.
    const session = await ModelSession.load(await fixtureEntry(), { ...cpu, device: "auto" }, silentLog);
    expect(["cpu", "cuda"]).toContain(session.provider);
    await session.release();
  });

  it("refuses a model whose graph does not match its manifest's tile", async () => {
    const manifest = JSON.parse(await readFile(join(FIXTURE_MODELS_DIR, "contract-model", "manifest.json"), "utf8")) as Record<string, unknown>;
    await expect(ModelSession.load(await withManifest({ ...manifest, tile: 64 }), cpu, silentLog)).rejects.toThrow(/input 'lr' has shape \[N, 3, 32, 32\], the contract says \[N, 3, 64, 64\]/);
  });

  it("runs a model that generates nothing (tokens 0) from its LR tiles alone", async () => {
    const session = await ModelSession.load(await fixtureEntry(DETERMINISTIC_DIR), cpu, silentLog);
    expect(session.tokens).toBe(0);
    const t = session.tile;
    const out = await session.run(new Float32Array(3 * t * t).fill(0.5), new Float32Array(0), 1, { temperature: 0, cleanup: 1 });
    expect(out.x4.length).toBe(3 * 16 * t * t);
    expect(out.x4[0]).toBeCloseTo(0.5, 6);
    await session.release();
  });

  it("runs tiles of any shape within the tile on a model with a tile step", async () => {
    const session = await ModelSession.load(await fixtureEntry(FITTED_DIR), cpu, silentLog);
    const shape = { height: 16, width: 24 };
    const out = await session.run(new Float32Array(2 * 3 * 16 * 24).fill(0.5), new Float32Array(0), 2, { temperature: 0, cleanup: 1 }, shape);
    expect([out.x1.length, out.x2.length, out.x4.length]).toEqual([2 * 3 * 384, 2 * 12 * 384, 2 * 48 * 384]);
    expect(out.x4[0]).toBeCloseTo(0.5, 6);
    await session.release();
  });

  it("refuses another tile shape on a model whose graph takes one", async () => {
    const session = await ModelSession.load(await fixtureEntry(DETERMINISTIC_DIR), cpu, silentLog);
    await expect(session.run(new Float32Array(3 * 16 * 24), new Float32Array(0), 1, { temperature: 0, cleanup: 1 }, { height: 16, width: 24 })).rejects.toThrow(/takes 32px tiles only/);
    await session.release();
  });

  it("refuses a tile step over a graph whose tile sides are fixed, and fixed sides over a free graph", async () => {
    const fixed = await fixtureEntry(DETERMINISTIC_DIR);
    await expect(ModelSession.load(await withManifest({ ...fixed.manifest, tileStep: 8 }, DETERMINISTIC_DIR), cpu, silentLog)).rejects.toThrow(/input 'lr' has shape \[N, 3, 32, 32\], the contract says \[N, 3, H, W\]/);
    const free = await fixtureEntry(FITTED_DIR);
    await expect(ModelSession.load(await withManifest({ ...free.manifest, tileStep: undefined }, FITTED_DIR), cpu, silentLog)).rejects.toThrow(/breaks contract v1/);
  });

  it("feeds the clean-up strength to a model that takes one: x1 is the input at 0 and its clean-up at 1", async () => {
    const session = await ModelSession.load(await fixtureEntry(FITTED_DIR), cpu, silentLog);
    const lr = Float32Array.from({ length: 3 * 8 * 8 }, (_, i) => (i % 7) / 7);
    const x1 = async (cleanup: number) => (await session.run(lr, new Float32Array(0), 1, { temperature: 0, cleanup }, { height: 8, width: 8 })).x1;
    const [none, full] = [await x1(0), await x1(1)];
    none.forEach((v, i) => expect(v).toBeCloseTo(lr[i] as number, 6));
    expect(full.some((v, i) => Math.abs(v - (lr[i] as number)) > 0.05)).toBe(true);
    await session.release();
  });

  it("refuses a graph that takes a clean-up strength when its manifest says it has none, and the reverse", async () => {
    const fitted = await fixtureEntry(FITTED_DIR);
    await expect(ModelSession.load(await withManifest({ ...fitted.manifest, cleanup: undefined }, FITTED_DIR), cpu, silentLog)).rejects.toThrow(/input 'cleanup' not in the contract/);
    const fixed = await fixtureEntry(DETERMINISTIC_DIR);
    await expect(ModelSession.load(await withManifest({ ...fixed.manifest, cleanup: true }, DETERMINISTIC_DIR), cpu, silentLog)).rejects.toThrow(/input 'cleanup' is missing/);
  });

  it("refuses a graph that takes noise when its manifest says it generates nothing", async () => {
    const { manifest } = await fixtureEntry();
    await expect(ModelSession.load(await withManifest({ ...manifest, tokens: 0 }), cpu, silentLog)).rejects.toThrow(/inputs 'noise', 'temperature' not in the contract for tokens = 0/);
  });

  it("runs a batch on a thread of its own: the caller's event loop keeps turning until the batch returns", async ({ skip }) => {
    if (!existsSync(join(SHIPPED_DIR, "hvar", "model.onnx"))) skip("the shipped model is not in gpu-runner/models");
    const session = await ModelSession.load(await fixtureEntry(SHIPPED_DIR), cpu, silentLog);
    let turns = 0;
    let running = true;
    const turn = () => {
      turns++;
      if (running) setImmediate(turn);
    };
    setImmediate(turn);
    const t = session.tile;
    await session.run(new Float32Array(3 * t * t).fill(0.5), new Float32Array(0), 1, { temperature: 0, cleanup: 1 });
    running = false;
    // Run on the caller's thread (onnxruntime-node's own run()), the batch held it: no turn until it returned.
    expect(turns).toBeGreaterThan(10);
    await session.release();
  });

  it("leaves the caller's buffers with the caller, and runs the next batch from them", async () => {
    const session = await ModelSession.load(await fixtureEntry(DETERMINISTIC_DIR), cpu, silentLog);
    const t = session.tile;
    const lr = new Float32Array(2 * 3 * t * t).fill(0.25);
    await session.run(lr, new Float32Array(0), 2, { temperature: 0, cleanup: 1 });
    expect(lr.length).toBe(2 * 3 * t * t);
    lr.fill(0.75);
    expect((await session.run(lr, new Float32Array(0), 1, { temperature: 0, cleanup: 1 })).x4[0]).toBeCloseTo(0.75, 6);
    await session.release();
  });

  it("refuses a batch once released", async () => {
    const session = await ModelSession.load(await fixtureEntry(DETERMINISTIC_DIR), cpu, silentLog);
    await session.release();
    const t = session.tile;
    await expect(session.run(new Float32Array(3 * t * t), new Float32Array(0), 1, { temperature: 0, cleanup: 1 })).rejects.toThrow(/was released/);
  });

  it("says when its thread is gone (killed, as by the OOM killer), and refuses batches after it with the reason", async () => {
    const session = await ModelSession.load(await fixtureEntry(DETERMINISTIC_DIR), cpu, silentLog);
    // Its thread is private: reached here only to kill it as the system would.
    await (session as unknown as { thread: Worker }).thread.terminate();
    expect((await session.lost).message).toMatch(/exited with code 1/);
    const t = session.tile;
    await expect(session.run(new Float32Array(3 * t * t), new Float32Array(0), 1, { temperature: 0, cleanup: 1 })).rejects.toThrow(/exited with code 1/);
  });

  it("logs what onnxruntime's thread reports through the caller's logger, with its bindings", async () => {
    const lines: string[] = [];
    const log = pino({ level: "info", base: { service: "gpu-runner" } }, { write: (line: string) => lines.push(line) });
    const session = await ModelSession.load(await fixtureEntry(DETERMINISTIC_DIR), cpu, log);
    await session.release();
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records).toContainEqual(expect.objectContaining({ level: 30, service: "gpu-runner", provider: "cpu", threads: 1, msg: "execution provider: CPU" }));
  });
});
