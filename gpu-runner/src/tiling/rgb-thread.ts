import { parentPort } from "node:worker_threads";
import { sumToRgb, type SumRows } from "./to-rgb";

/** A band of rows of one image to make: the sum's chunks and the image are shared memory. */
export interface ToRgbThread {
  id: number;
  sum: SumRows;
  grey: boolean;
  rgb: Uint8Array;
  y0: number;
  y1: number;
}
export type FromRgbThread = { id: number; error?: undefined } | { id: number; error: string };

const port = parentPort;
if (!port) throw new Error("rgb-thread.ts runs as a worker thread (rgb-threads.ts starts it)");
port.on("message", ({ id, sum, grey, rgb, y0, y1 }: ToRgbThread) => {
  try {
    sumToRgb(sum, grey, rgb, y0, y1);
    port.postMessage({ id } satisfies FromRgbThread);
  } catch (error) {
    port.postMessage({ id, error: error instanceof Error ? error.message : String(error) } satisfies FromRgbThread);
  }
});
