import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { discoverModels, ManifestSchema, tileOverlap, tileStep } from "../../gpu-runner/src/model/manifest";
import { tempDir } from "./helpers";

const onnxBytes = Buffer.from("not really onnx, but the hash is what is checked here");

function manifestFor(id: string, bytes: Buffer) {
  return {
    id,
    version: "1.0.0",
    tile: 32,
    scales: [1, 2, 4],
    tokens: 100,
    opset: 18,
    precision: "fp32",
    sha256: createHash("sha256").update(bytes).digest("hex"),
    config: {},
    evaluation: {},
  };
}

async function modelsDirWith(models: Record<string, { manifest?: unknown; onnx?: Buffer }>) {
  const dir = await tempDir("hvar-models-");
  for (const [name, { manifest, onnx }] of Object.entries(models)) {
    await mkdir(join(dir, name));
    if (manifest !== undefined) await writeFile(join(dir, name, "manifest.json"), JSON.stringify(manifest));
    if (onnx !== undefined) await writeFile(join(dir, name, "model.onnx"), onnx);
  }
  return dir;
}

describe("discoverModels", () => {
  it("loads a model whose file matches its manifest's sha256", async () => {
    const dir = await modelsDirWith({ good: { manifest: manifestFor("good", onnxBytes), onnx: onnxBytes } });
    const { models, rejected } = await discoverModels(dir);
    expect(models.map((m) => m.manifest.id)).toEqual(["good"]);
    expect(rejected).toEqual([]);
  });

  it("rejects a model whose file does not match its sha256", async () => {
    const dir = await modelsDirWith({ tampered: { manifest: manifestFor("tampered", onnxBytes), onnx: Buffer.from("other") } });
    const { models, rejected } = await discoverModels(dir);
    expect(models).toEqual([]);
    expect(rejected[0]?.reason).toMatch(/sha256 mismatch/);
  });

  it("rejects a manifest that breaks the contract, saying which field", async () => {
    const dir = await modelsDirWith({ bad: { manifest: { ...manifestFor("bad", onnxBytes), scales: [2, 4] }, onnx: onnxBytes } });
    const { rejected } = await discoverModels(dir);
    expect(rejected[0]?.reason).toMatch(/scales/);
  });

  it("rejects a manifest without its model file", async () => {
    const dir = await modelsDirWith({ lonely: { manifest: manifestFor("lonely", onnxBytes) } });
    expect((await discoverModels(dir)).rejected[0]?.reason).toBe("model.onnx is missing");
  });

  it("ignores folders without a manifest and a missing models folder", async () => {
    const dir = await modelsDirWith({ scratch: {} });
    expect(await discoverModels(dir)).toEqual({ models: [], rejected: [] });
    expect(await discoverModels(join(dir, "absent"))).toEqual({ models: [], rejected: [] });
  });

  it("rejects a manifest overlap larger than half the tile", async () => {
    const dir = await modelsDirWith({ wide: { manifest: { ...manifestFor("wide", onnxBytes), overlap: 17 }, onnx: onnxBytes } });
    expect((await discoverModels(dir)).rejected[0]?.reason).toMatch(/overlap must be at most half the tile/);
  });

  it("takes a tile step that divides the tile in a model that draws nothing, and no other", async () => {
    const step = (id: string, tileStep: number, tokens: number) => ({ manifest: { ...manifestFor(id, onnxBytes), tileStep, tokens }, onnx: onnxBytes });
    const dir = await modelsDirWith({ fits: step("fits", 8, 0), uneven: step("uneven", 12, 0), drawing: step("drawing", 8, 100) });
    const { models, rejected } = await discoverModels(dir);
    expect(models.map((m) => m.manifest.id)).toEqual(["fits"]);
    expect(rejected.map((r) => r.reason)).toEqual([expect.stringMatching(/tileStep must divide the tile/), expect.stringMatching(/tileStep must divide the tile/)]);
  });
});

describe("tileOverlap", () => {
  const manifest = ManifestSchema.parse(manifestFor("m", onnxBytes));

  it("is a quarter tile when neither the operator nor the manifest sets it", () => {
    expect(tileOverlap(manifest, undefined)).toBe(8);
  });

  it("is the manifest's when it sets one, and the operator's above both", () => {
    expect(tileOverlap({ ...manifest, overlap: 12 }, undefined)).toBe(12);
    expect(tileOverlap({ ...manifest, overlap: 12 }, 0)).toBe(0);
  });
});

describe("tileStep", () => {
  const fitted = ManifestSchema.parse({ ...manifestFor("m", onnxBytes), tokens: 0, tileStep: 8 });

  it("is the manifest's unless the operator sets a coarser one, and none for a model of one tile side", () => {
    expect(tileStep(fitted, undefined)).toBe(8);
    expect(tileStep(fitted, 16)).toBe(16);
    expect(tileStep(ManifestSchema.parse(manifestFor("m", onnxBytes)), undefined)).toBeUndefined();
  });

  it("refuses at start-up a step the model cannot take", () => {
    expect(() => tileStep(fitted, 12)).toThrow(/multiple of model m's tileStep 8 and divide its tile 32/);
    expect(() => tileStep(ManifestSchema.parse(manifestFor("m", onnxBytes)), 16)).toThrow(/takes 32px tiles only/);
  });
});
