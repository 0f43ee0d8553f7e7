import { Worker } from "node:worker_threads";
import pino, { type Level, type Logger } from "pino";
import type { FromThread, ThreadData, ToThread } from "./inference-thread";
import type { ModelEntry } from "./manifest";
import type { SessionOptions } from "./onnx";
import type { ModelOutputs, RunSettings, TileModel, TileShape } from "./types";

export type { SessionOptions } from "./onnx";

type Ready = Extract<FromThread, { type: "ready" }>;
interface Run {
  resolve: (outputs: ModelOutputs) => void;
  reject: (error: Error) => void;
}

/**
 * One model of contract v1, checked, warmed up and run once per batch, on a thread of its own
 * (inference-thread.ts): the runner's thread stays free to answer while a batch runs.
 */
export class ModelSession implements TileModel {
  readonly tile: number;
  readonly tokens: number;
  readonly provider: Ready["provider"];
  /** The optimized graph the session was made from, when it is cached. */
  readonly graph: Ready["graph"];
  private readonly runs = new Map<number, Run>();
  private nextRun = 0;
  /**
   * Resolves with the reason if the thread fails or exits without release(): no batch runs after that
   * (those in flight fail with the same reason), so the runner exits to be restarted, as if it crashed.
   */
  readonly lost: Promise<Error>;
  /** Why no batch can run any more: the thread failed, exited or was released. */
  private ended: Error | undefined;

  private constructor(
    readonly entry: ModelEntry,
    private readonly thread: Worker,
    ready: Ready,
  ) {
    this.tile = entry.manifest.tile;
    this.tokens = entry.manifest.tokens;
    this.provider = ready.provider;
    this.graph = ready.graph;
    thread.on("message", (message: FromThread) => {
      if (message.type !== "done" && message.type !== "error") return;
      const run = this.runs.get(message.id);
      this.runs.delete(message.id);
      // Idle, the thread does not keep the process alive (a CLI that is done exits).
      if (this.runs.size === 0) thread.unref();
      if (message.type === "done") run?.resolve(message.outputs);
      else run?.reject(new Error(message.message));
    });
    let lose: (error: Error) => void = () => undefined;
    this.lost = new Promise((resolve) => (lose = resolve));
    const end = (error: Error) => {
      if (!this.ended) lose(error);
      this.ended ??= error;
      for (const run of this.runs.values()) run.reject(error);
      this.runs.clear();
    };
    thread.on("error", end);
    thread.on("exit", (code) => end(new Error(`the inference thread exited with code ${code}`)));
    thread.unref();
  }

  static async load(entry: ModelEntry, options: SessionOptions, log: Logger): Promise<ModelSession> {
    const created = performance.now();
    const data: ThreadData = { entry, options, logLevel: log.level };
    const thread = new Worker(new URL("./inference-thread.mjs", import.meta.url), { workerData: data });
    thread.on("message", (message: FromThread) => {
      if (message.type === "log") relog(log, message.line);
    });
    const ready = await new Promise<Ready>((resolve, reject) => {
      thread.on("message", (message: FromThread) => {
        if (message.type === "ready") resolve(message);
        if (message.type === "failed") reject(new Error(message.message));
      });
      thread.once("error", reject);
      thread.once("exit", (code) => reject(new Error(`the inference thread exited with code ${code} before the model loaded`)));
    });
    const model = new ModelSession(entry, thread, ready);
    const createMs = Math.round(performance.now() - created);
    const started = performance.now();
    // The first run allocates buffers and (on CUDA) picks kernels: pay for it before the first job.
    await model.run(new Float32Array(3 * model.tile * model.tile), new Float32Array(model.tokens), 1, { temperature: 0, cleanup: 1 });
    const warmupMs = Math.round(performance.now() - started);
    log.info({ model: entry.manifest.id, version: entry.manifest.version, provider: model.provider, createMs, graph: model.graph?.path ?? null, graphReused: model.graph?.reused ?? false, warmupMs }, "model warmed up");
    return model;
  }

  async run(lr: Float32Array, noise: Float32Array, n: number, settings: RunSettings, shape?: TileShape): Promise<ModelOutputs> {
    const { height, width } = shape ?? { height: this.tile, width: this.tile };
    if ((height !== this.tile || width !== this.tile) && this.entry.manifest.tileStep === undefined) throw new RangeError(`model ${this.entry.manifest.id} takes ${this.tile}px tiles only, not ${height}x${width}`);
    if (this.ended) throw this.ended;
    const id = this.nextRun++;
    // Copies, handed over to the thread: the caller keeps its buffers.
    const message: ToThread = { type: "run", id, lr: lr.slice(0, 3 * n * height * width), noise: noise.slice(0, n * this.tokens), n, settings, shape: { height, width } };
    return new Promise<ModelOutputs>((resolve, reject) => {
      this.runs.set(id, { resolve, reject });
      this.thread.ref();
      this.thread.postMessage(message, [message.lr.buffer, message.noise.buffer] as ArrayBuffer[]);
    });
  }

  /** Releases the onnxruntime session and ends its thread; runs after this fail. */
  async release(): Promise<void> {
    if (this.ended) return;
    this.ended = new Error(`model ${this.entry.manifest.id} was released`);
    const exited = new Promise((resolve) => this.thread.once("exit", resolve));
    this.thread.ref();
    this.thread.postMessage({ type: "release" } satisfies ToThread);
    await exited;
  }
}

/** A record the thread logged, logged again by the runner's logger (its bindings, its destination). */
function relog(log: Logger, line: string): void {
  const { level, msg, ...fields } = JSON.parse(line) as { level: number; msg?: string } & Record<string, unknown>;
  const label = pino.levels.labels[level] as Level | undefined;
  log[label ?? "info"](fields, msg);
}
