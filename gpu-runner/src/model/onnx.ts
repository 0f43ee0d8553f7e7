import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as ort from "onnxruntime-node";
import type { Logger } from "pino";
import { CPUS } from "../cpus";
import { type CachedGraph, createCachedSession } from "./graph-cache";
import type { ModelEntry } from "./manifest";
import type { ModelOutputs, RunSettings, TileShape } from "./types";

/**
 * onnxruntime itself: the session made for a model, checked against contract v1, and run on one batch.
 * Only the inference thread (inference-thread.ts) imports this: onnxruntime-node's run() holds the
 * thread that calls it for the whole batch.
 */

export interface SessionOptions {
  /** `auto` tries CUDA and falls back to the CPU; `cuda` refuses to start without it. */
  device: "auto" | "cuda" | "cpu";
  cudaDeviceId: number;
  /** CPU intra-op threads; 0 means one per available core. */
  cpuThreads: number;
  /** Where optimized graphs are kept (graph-cache.ts); none: the graph is optimized at every load. */
  graphCacheDir?: string;
}

export interface OnnxSession {
  session: ort.InferenceSession;
  provider: "cuda" | "cpu";
  graph?: CachedGraph;
}

/**
 * The contract's tensors and their shapes, with `N` for the dynamic batch dimension, and `H`, `W` for
 * the tile's sides of a model with a tile step (manifest `tileStep`). A model that generates nothing
 * (`tokens` 0, e.g. the restoration stage alone) takes no noise or temperature; a model with a
 * clean-up setting (manifest `cleanup`) also takes its strength.
 */
function contractShapes(tile: number, tokens: number, fitted: boolean, cleanup: boolean): Record<"inputs" | "outputs", Record<string, (string | number)[]>> {
  const sampling: Record<string, (string | number)[]> = tokens > 0 ? { noise: ["N", tokens], temperature: [1] } : {};
  const strength: Record<string, (string | number)[]> = cleanup ? { cleanup: [1] } : {};
  const sides = (s: number) => (fitted ? [s === 1 ? "H" : `${s}H`, s === 1 ? "W" : `${s}W`] : [s * tile, s * tile]);
  return {
    inputs: { lr: ["N", 3, ...sides(1)], ...sampling, ...strength },
    outputs: { x1: ["N", 3, ...sides(1)], x2: ["N", 3, ...sides(2)], x4: ["N", 3, ...sides(4)] },
  };
}

/**
 * Whether onnxruntime-node's CUDA provider library was installed beside its binding (it is only with
 * ONNXRUNTIME_NODE_INSTALL=cuda12, as in the container). Checked first in `auto` mode so CPU hosts
 * do not try, and log a native error, on every start.
 */
function cudaProviderInstalled(): boolean {
  const dist = dirname(createRequire(import.meta.url).resolve("onnxruntime-node"));
  return existsSync(join(dist, "..", "bin", "napi-v6", process.platform, process.arch, "libonnxruntime_providers_cuda.so"));
}

export async function createSession(entry: ModelEntry, options: SessionOptions, log: Logger): Promise<OnnxSession> {
  const key = (provider: "cuda" | "cpu") => ({ id: entry.manifest.id, sha256: entry.manifest.sha256, provider });
  const tryCuda = options.device === "cuda" || (options.device === "auto" && cudaProviderInstalled());
  if (options.device === "auto" && !tryCuda) log.info("CUDA execution provider not installed (ONNXRUNTIME_NODE_INSTALL=cuda12 installs it)");
  if (tryCuda) {
    try {
      const cuda = await createCachedSession(
        entry.onnxPath,
        key("cuda"),
        {
          executionProviders: [{ name: "cuda", deviceId: options.cudaDeviceId }],
          // A missing CUDA library is expected on CPU hosts; it is reported once, below, not as an ORT error.
          logSeverityLevel: 4,
        },
        options.graphCacheDir,
        log,
      );
      log.info({ provider: "cuda", deviceId: options.cudaDeviceId }, "execution provider: CUDA");
      return { ...cuda, provider: "cuda" };
    } catch (error) {
      if (options.device === "cuda") throw new Error(`CUDA execution provider requested but unavailable: ${String(error)}`, { cause: error });
      log.warn({ reason: error instanceof Error ? error.message : String(error) }, "CUDA execution provider unavailable, using the CPU");
    }
  }
  const threads = options.cpuThreads > 0 ? options.cpuThreads : CPUS;
  const cpu = await createCachedSession(
    entry.onnxPath,
    key("cpu"),
    {
      executionProviders: ["cpu"],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      // Spin-waiting threads burn cores between runs; on a shared or busy host (the local stack, CI)
      // that made the fixture model 18x slower per tile (bench/runner/README.md). Off, always.
      extra: { session: { intra_op: { allow_spinning: "0" } } },
      // A memory pattern is recorded per input shape, and a batch of each new size then ran twice at
      // 2.2-2.8x the CPU (hvar 2.3.0). Batches here take every size up to the maximum, and without the
      // pattern every size runs at the same steady cost from the session's second run
      // (bench/runner/README.md, "Warm-up").
      enableMemPattern: false,
    },
    options.graphCacheDir,
    log,
  );
  log.info({ provider: "cpu", threads }, "execution provider: CPU");
  return { ...cpu, provider: "cpu" };
}

/** Runs one batch: `lr` is `[n, 3, H, W]`, `noise` `[n, L]` (models with tokens only). */
export async function runBatch(
  { session }: OnnxSession,
  entry: ModelEntry,
  lr: Float32Array,
  noise: Float32Array,
  n: number,
  { temperature, cleanup }: RunSettings,
  { height, width }: TileShape,
): Promise<ModelOutputs> {
  const pixels = n * height * width;
  const feeds: Record<string, ort.Tensor> = { lr: new ort.Tensor("float32", lr.subarray(0, 3 * pixels), [n, 3, height, width]) };
  if (entry.manifest.tokens > 0) {
    feeds.noise = new ort.Tensor("float32", noise.subarray(0, n * entry.manifest.tokens), [n, entry.manifest.tokens]);
    feeds.temperature = new ort.Tensor("float32", Float32Array.of(temperature), [1]);
  }
  if (entry.manifest.cleanup) feeds.cleanup = new ort.Tensor("float32", Float32Array.of(cleanup), [1]);
  const result = await session.run(feeds);
  return { x1: tensorData(result, "x1", 3 * pixels), x2: tensorData(result, "x2", 12 * pixels), x4: tensorData(result, "x4", 48 * pixels) };
}

/** Refuses a model whose graph does not match its manifest and contract v1, before any job sees it. */
export function checkContract(session: ort.InferenceSession, entry: ModelEntry): void {
  const { tile, tokens, tileStep, cleanup = false } = entry.manifest;
  const expected = contractShapes(tile, tokens, tileStep !== undefined, cleanup);
  const problems: string[] = [];
  const compare = (kind: string, metadata: readonly ort.InferenceSession.ValueMetadata[], want: Record<string, (string | number)[]>) => {
    for (const [name, shape] of Object.entries(want)) {
      const found = metadata.find((m) => m.name === name);
      if (found === undefined) {
        problems.push(`${kind} '${name}' is missing`);
      } else if (!found.isTensor || found.type !== "float32") {
        problems.push(`${kind} '${name}' is not a float32 tensor`);
      } else if (!sameShape(found.shape, shape)) {
        problems.push(`${kind} '${name}' has shape [${found.shape.join(", ")}], the contract says [${shape.join(", ")}]`);
      }
    }
  };
  compare("input", session.inputMetadata, expected.inputs);
  const extra = session.inputMetadata.map((m) => m.name).filter((name) => !(name in expected.inputs));
  if (extra.length > 0) problems.push(`input${extra.length > 1 ? "s" : ""} ${extra.map((name) => `'${name}'`).join(", ")} not in the contract for tokens = ${tokens}${cleanup ? " with cleanup" : ""}`);
  compare("output", session.outputMetadata, expected.outputs);
  if (problems.length > 0) throw new Error(`model ${entry.manifest.id} breaks contract v1: ${problems.join("; ")}`);
}

/** A symbolic dimension matches only a symbolic one; a number matches itself. */
function sameShape(actual: readonly (number | string)[], want: readonly (number | string)[]): boolean {
  return actual.length === want.length && actual.every((d, i) => (typeof want[i] === "string" ? typeof d === "string" || d === -1 : d === want[i]));
}

function tensorData(result: ort.InferenceSession.ReturnType, name: string, length: number): Float32Array {
  const tensor = result[name];
  if (tensor === undefined || !(tensor.data instanceof Float32Array) || tensor.data.length !== length) {
    throw new Error(`model output '${name}' does not have the contract's ${length} float32 values`);
  }
  return tensor.data;
}
