import { parentPort } from "node:worker_threads";
import { noiseLevel } from "../image/noise";
import { sumToRgb, type SumRows } from "./to-rgb";

/**
 * Work for an image thread: a band of rows of a blended image to make 8-bit (the sum's chunks and
 * the image are shared memory), or the noise of a decoded image (a copy) to read.
 */
export type ImageWork = { kind: "rgb"; sum: SumRows; grey: boolean; rgb: Uint8Array; y0: number; y1: number } | { kind: "noise"; rgb: Uint8Array; width: number; height: number };
export type ToImageThread = { id: number; work: ImageWork };
export type FromImageThread = { id: number; error?: undefined; level?: number } | { id: number; error: string };

const port = parentPort;
if (!port) throw new Error("image-thread.ts runs as a worker thread (image-threads.ts starts it)");
port.on("message", ({ id, work }: ToImageThread) => {
  try {
    if (work.kind === "rgb") {
      sumToRgb(work.sum, work.grey, work.rgb, work.y0, work.y1);
      port.postMessage({ id } satisfies FromImageThread);
    } else {
      port.postMessage({ id, level: noiseLevel(work.rgb, work.width, work.height) } satisfies FromImageThread);
    }
  } catch (error) {
    port.postMessage({ id, error: error instanceof Error ? error.message : String(error) } satisfies FromImageThread);
  }
});
