import { parentPort, workerData } from "node:worker_threads";
import pino from "pino";
import type { ModelEntry } from "./manifest";
import { type OnnxSession, type SessionOptions, checkContract, createSession, runBatch } from "./onnx";
import type { ModelOutputs, RunSettings, TileShape } from "./types";

/**
 * The thread that owns the model's onnxruntime session (session.ts starts it, through
 * inference-thread.mjs). onnxruntime-node's run() holds the thread that calls it for the whole batch,
 * seconds on a CPU: on the runner's own thread no health check, poll, cancel or upload would be answered
 * meanwhile. Here it holds only this one. Batches run one after another, in the order they came.
 */

export interface ThreadData {
  entry: ModelEntry;
  options: SessionOptions;
  /** The runner's log level: the thread's records are logged again by the runner's logger. */
  logLevel: string;
}

export type ToThread = { type: "run"; id: number; lr: Float32Array; noise: Float32Array; n: number; settings: RunSettings; shape: TileShape } | { type: "release" };

export type FromThread =
  | { type: "log"; line: string }
  | { type: "ready"; provider: OnnxSession["provider"]; graph: OnnxSession["graph"] }
  | { type: "failed"; message: string }
  | { type: "done"; id: number; outputs: ModelOutputs }
  | { type: "error"; id: number; message: string };

if (!parentPort) throw new Error("inference-thread.ts runs as a worker thread (session.ts starts it)");
const port = parentPort;
const { entry, options, logLevel } = workerData as ThreadData;
const post = (message: FromThread, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
const log = pino({ level: logLevel, base: undefined, timestamp: false }, { write: (line: string) => post({ type: "log", line }) });
const reason = (error: unknown) => (error instanceof Error ? error.message : String(error));

let onnx: OnnxSession | undefined;
try {
  onnx = await createSession(entry, options, log);
  checkContract(onnx.session, entry);
  post({ type: "ready", provider: onnx.provider, graph: onnx.graph });
} catch (error) {
  post({ type: "failed", message: reason(error) });
  await onnx?.session.release();
  port.close();
}

if (onnx) {
  const session = onnx;
  let queue = Promise.resolve();
  port.on("message", (message: ToThread) => {
    queue = queue.then(async () => {
      if (message.type === "release") {
        await session.session.release();
        port.close();
        return;
      }
      try {
        const outputs = await runBatch(session, entry, message.lr, message.noise, message.n, message.settings, message.shape);
        // Handed over, not copied (a buffer two outputs share is listed once).
        post({ type: "done", id: message.id, outputs }, [...new Set([outputs.x1.buffer, outputs.x2.buffer, outputs.x4.buffer])] as ArrayBuffer[]);
      } catch (error) {
        post({ type: "error", id: message.id, message: reason(error) });
      }
    });
  });
}
