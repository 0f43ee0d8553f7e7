import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Cleanup, MAX_INPUT_PIXELS, MAX_OUTPUT_PIXELS, type RunnerLimits, SCALES, scaleSchema } from "@hvar/contract";
import { z } from "zod";

/** `manifest.json` beside each `model.onnx`: the runner's side of the model contract (version 1). */
export const ManifestSchema = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/),
  version: z.string().min(1),
  tile: z.number().int().positive(),
  /** Every scale the service offers, in order: one model pass makes them all. */
  scales: z.array(scaleSchema).refine((scales) => scales.join() === SCALES.join(), `scales must be [${SCALES.join(", ")}]`),
  /** Uniforms the model draws its generated detail from, per tile; 0: a deterministic model (no noise or temperature input). */
  tokens: z.number().int().nonnegative(),
  /**
   * The graph takes tiles of any side that is a multiple of this, up to `tile` (its LR sides are
   * symbolic, `[N, 3, H, W]`), and the runner fits each image's tiles to it (tiling/plan.ts): a
   * model that computes the same at any size, and draws nothing. Absent: every tile is tile x tile.
   */
  tileStep: z.number().int().positive().optional(),
  /**
   * The graph also takes `cleanup` (`[1]`, in [0, 1]): how much of its restorer's correction x1 keeps
   * before the image is upscaled, 1 all of it, 0 none (the input as it is). Absent: it cleans fully.
   */
  cleanup: z.boolean().optional(),
  /** LR pixels neighbouring tiles share by default (HVAR_TILE_OVERLAP overrides; absent: a quarter tile). */
  overlap: z.number().int().nonnegative().optional(),
  /**
   * The most decoded input pixels the model is served for (its memory per job); absent: packages/
   * contract's MAX_INPUT_PIXELS. The runner's HVAR_MAX_INPUT_PIXELS may lower it, never raise it.
   */
  maxInputPixels: z.number().int().positive().optional(),
  /** The largest output image; absent: packages/contract's MAX_OUTPUT_PIXELS. */
  maxOutputPixels: z.number().int().positive().optional(),
  opset: z.number().int().positive(),
  precision: z.enum(["fp32", "fp16", "mixed", "int8"]),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  config: z.record(z.string(), z.unknown()),
  evaluation: z.record(z.string(), z.unknown()),
})
  .refine((m) => m.overlap === undefined || m.overlap * 2 <= m.tile, { message: "overlap must be at most half the tile", path: ["overlap"] })
  .refine((m) => m.tileStep === undefined || (m.tile % m.tileStep === 0 && m.tokens === 0), { message: "tileStep must divide the tile, in a model that draws nothing (tokens 0)", path: ["tileStep"] });
export type Manifest = z.infer<typeof ManifestSchema>;

/** The overlap a model is served with: the operator's, else the manifest's, else a quarter tile. */
export function tileOverlap(manifest: Manifest, configured: number | undefined): number {
  return configured ?? manifest.overlap ?? Math.floor(manifest.tile / 4);
}

/**
 * The step fitted tiles are cut with: the operator's (HVAR_TILE_STEP), else the manifest's; none for a
 * model whose graph takes one tile side. Throws at start-up on a step the model cannot take.
 */
export function tileStep(manifest: Manifest, configured: number | undefined): number | undefined {
  if (configured === undefined) return manifest.tileStep;
  if (manifest.tileStep === undefined) throw new Error(`HVAR_TILE_STEP is set, but model ${manifest.id} takes ${manifest.tile}px tiles only`);
  if (configured % manifest.tileStep !== 0 || manifest.tile % configured !== 0) throw new Error(`HVAR_TILE_STEP ${configured} must be a multiple of model ${manifest.id}'s tileStep ${manifest.tileStep} and divide its tile ${manifest.tile}`);
  return configured;
}

/** Whether the model samples generated detail (it takes uniforms and a temperature), so that a temperature changes its pixels. */
const samples = (manifest: Manifest): boolean => manifest.tokens > 0;

/**
 * What a runner serving this model accepts (`GET /v1/model`, read by the worker, which refuses at
 * the edge what the runner would refuse): the manifest's limits, within the operator's
 * HVAR_MAX_INPUT_PIXELS, and the manifest's scales.
 */
export function manifestLimits(manifest: Manifest, configuredMaxInputPixels: number): Omit<RunnerLimits, "maxBodyBytes"> {
  return {
    maxInputPixels: Math.min(manifest.maxInputPixels ?? MAX_INPUT_PIXELS, configuredMaxInputPixels),
    maxOutputPixels: manifest.maxOutputPixels ?? MAX_OUTPUT_PIXELS,
    scales: manifest.scales,
    sampling: samples(manifest),
    cleanup: manifest.cleanup ?? false,
  };
}

/**
 * The temperature a job runs at: the one asked for where the model samples, else 0, which is what
 * every temperature gives a deterministic model; so its jobs report what was made and share batches.
 */
export const servedTemperature = (manifest: Manifest, asked: number): number => (samples(manifest) ? asked : 0);

/** The clean-up strength a job runs at: the one asked for (or `auto`) where the model takes one, else 1, all it does. */
export const servedCleanup = (manifest: Manifest, asked: Cleanup): Cleanup => (manifest.cleanup ? asked : 1);

export interface ModelEntry {
  manifest: Manifest;
  onnxPath: string;
}

export interface Discovery {
  models: ModelEntry[];
  /** Folders that hold a manifest but could not be used, with the reason. */
  rejected: { dir: string; reason: string }[];
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Finds `<modelsDir>/*\/manifest.json`, validates each and checks the ONNX file's sha256. */
export async function discoverModels(modelsDir: string): Promise<Discovery> {
  const discovery: Discovery = { models: [], rejected: [] };
  const entries = await readdir(modelsDir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const dir = join(modelsDir, entry.name);
    const text = await readFile(join(dir, "manifest.json"), "utf8").catch(() => undefined);
    if (text === undefined) continue;
    const result = ManifestSchema.safeParse(parseJson(text));
    if (!result.success) {
      discovery.rejected.push({ dir, reason: `invalid manifest: ${z.prettifyError(result.error)}` });
      continue;
    }
    const onnxPath = join(dir, "model.onnx");
    const actual = await sha256File(onnxPath).catch(() => undefined);
    if (actual === undefined) {
      discovery.rejected.push({ dir, reason: "model.onnx is missing" });
    } else if (actual !== result.data.sha256) {
      discovery.rejected.push({ dir, reason: `sha256 mismatch: manifest ${result.data.sha256}, file ${actual}` });
    } else {
      discovery.models.push({ manifest: result.data, onnxPath });
    }
  }
  return discovery;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
