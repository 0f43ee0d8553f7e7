import { createHash, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, rename, rm } from "node:fs/promises";
import { arch, cpus } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import type { Logger } from "pino";

/**
 * onnxruntime rewrites a graph every time a session is created (constant folding, fusions, and on the CPU
 * blocked memory layouts sized for the processor's vector width). This keeps the rewritten graph in a
 * folder: the first session writes it, every later one loads it with optimization off.
 *
 * A rewritten graph is only valid for the model file, the onnxruntime build, the execution provider and
 * the processor it was made for, so all four are in its file name: a new model or a new onnxruntime
 * never finds an old file. When a new file is written, the model's files for other model versions or
 * onnxruntime versions are deleted.
 */

export const ORT_VERSION = ort.env.versions.common;

export interface GraphKey {
  /** The manifest's `id` and `sha256` (checked against the file at discovery). */
  id: string;
  sha256: string;
  provider: "cuda" | "cpu";
}

export interface CachedGraph {
  path: string;
  /** true: loaded from the folder; false: optimized now and written there. */
  reused: boolean;
}

/** The processor the blocked layouts were chosen for. */
function hostTag(): string {
  return createHash("sha256").update(`${process.platform} ${arch()} ${cpus()[0]?.model ?? "unknown"}`).digest("hex").slice(0, 8);
}

/** `<id>.<sha256/16>.ort<version>.<provider>.<host>.onnx` in `dir`. */
export function optimizedGraphPath(dir: string, key: GraphKey, ortVersion: string = ORT_VERSION): string {
  return join(dir, `${key.id}.${key.sha256.slice(0, 16)}.ort${ortVersion}.${key.provider}.${hostTag()}.onnx`);
}

/**
 * A session of `onnxPath` with `options`, through the cache in `dir` (none: optimized on every call).
 * A cached file that onnxruntime refuses is deleted and written again; a folder that cannot be written
 * costs the optimization only.
 */
export async function createCachedSession(
  onnxPath: string,
  key: GraphKey,
  options: ort.InferenceSession.SessionOptions,
  dir: string | undefined,
  log: Logger,
): Promise<{ session: ort.InferenceSession; graph?: CachedGraph }> {
  const optimize = { ...options, graphOptimizationLevel: "all" } as const;
  if (!dir) return { session: await ort.InferenceSession.create(onnxPath, optimize) };
  const path = optimizedGraphPath(dir, key);
  if (existsSync(path)) {
    try {
      return { session: await ort.InferenceSession.create(path, { ...options, graphOptimizationLevel: "disabled" }), graph: { path, reused: true } };
    } catch (error) {
      log.warn({ path, reason: error instanceof Error ? error.message : String(error) }, "cached optimized graph unusable: optimizing the model again");
      await rm(path, { force: true });
    }
  }
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    log.warn({ dir, reason: error instanceof Error ? error.message : String(error) }, "graph cache folder not writable: the model is optimized at every start");
    return { session: await ort.InferenceSession.create(onnxPath, optimize) };
  }
  // Written under a temporary name and renamed, so that a crash or a concurrent start never leaves
  // half a graph under the real name.
  const partial = `${path}.${randomUUID()}.tmp`;
  const session = await ort.InferenceSession.create(onnxPath, {
    ...optimize,
    optimizedModelFilePath: partial,
    // onnxruntime warns that a graph with blocked layouts fits only this machine: the host is in the key.
    logSeverityLevel: Math.max(options.logSeverityLevel ?? 2, 3) as 3 | 4,
  });
  try {
    await rename(partial, path);
    await removeOtherVersions(dir, key, path);
  } catch (error) {
    // The session is fine; only the next start pays for the optimization again.
    log.warn({ path, reason: error instanceof Error ? error.message : String(error) }, "optimized graph not cached");
    await rm(partial, { force: true });
    return { session };
  }
  return { session, graph: { path, reused: false } };
}

/** The model's graphs for other model files or onnxruntime versions (same id, provider and host). */
async function removeOtherVersions(dir: string, key: GraphKey, current: string): Promise<void> {
  const id = key.id.replace(/[.]/g, "\\.");
  const sameModel = new RegExp(`^${id}\\.[0-9a-f]{16}\\.ort.+\\.${key.provider}\\.${hostTag()}\\.onnx$`);
  for (const name of await readdir(dir)) {
    if (sameModel.test(name) && join(dir, name) !== current) await rm(join(dir, name), { force: true });
  }
}
