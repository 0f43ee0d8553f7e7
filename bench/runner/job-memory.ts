/**
 * The memory one maximum-size job holds on the runner, measured with process.memoryUsage(): a
 * 2048x2048 RGBA input (the runner's HVAR_MAX_INPUT_PIXELS) at scales 1, 2 and 4 in PNG, through the
 * runner's own decode, tiling, scheduler, blending and encoding. The model is a nearest-neighbour
 * stand-in with the shipped model's tile: a job's buffers do not depend on what the model computes,
 * and onnxruntime's own memory is the batch's (HVAR_MEMORY_BUDGET_MB), not the job's.
 *
 *   node --expose-gc node_modules/.bin/tsx bench/runner/job-memory.ts [--size 2048x2048] [--scales 1,2,4] [--channels 4|3]
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { decodeImage } from "../../gpu-runner/src/image/decode";
import type { ModelOutputs, TileModel } from "../../gpu-runner/src/model/types";
import { Scheduler } from "../../gpu-runner/src/scheduler/scheduler";
import { UpscaleTask, taskMemoryBytes } from "../../gpu-runner/src/tiling/task";
import type { Scale } from "@hvar/contract";

const { values } = parseArgs({ options: { size: { type: "string", default: "2048x2048" }, scales: { type: "string", default: "1,2,4" }, channels: { type: "string", default: "4" } } });
const channels = values.channels === "3" ? 3 : 4;
const [width, height] = values.size.split("x").map(Number) as [number, number];
const scales = values.scales.split(",").map(Number) as Scale[];
const TILE = 32;

function nearest(tile: number): TileModel {
  return {
    tile,
    tokens: 4,
    run(lr, _noise, n): Promise<ModelOutputs> {
      const up = (s: number) => {
        const side = tile * s;
        const out = new Float32Array(n * 3 * side * side);
        for (let p = 0; p < n * 3; p++)
          for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) out[p * side * side + y * side + x] = lr[p * tile * tile + Math.floor(y / s) * tile + Math.floor(x / s)] as number;
        return out;
      };
      return Promise.resolve({ x1: up(1), x2: up(2), x4: up(4) });
    },
  };
}

const gc = (globalThis as { gc?: () => void }).gc;
const MB = (b: number) => Math.round(b / 2 ** 20);
const usage = () => {
  const m = process.memoryUsage();
  return m.rss;
};

// Noise with a ragged alpha (`--channels 3`: without): the worst case for the encoder and for alpha's extra planes.
const raw = randomBytes(width * height * channels);
const png = await sharp(raw, { raw: { width, height, channels } }).png({ compressionLevel: 1 }).toBuffer();
raw.fill(0);
gc?.();
const base = usage();
let peak = base;
const sample = () => (peak = Math.max(peak, usage()));
const timer = setInterval(sample, 5);

const image = await decodeImage(png, { maxPixels: 2 ** 22, animated: "first" });
const task = await UpscaleTask.create(image, { scales, tile: TILE, overlap: TILE / 4, temperature: 0 });
const scheduler = new Scheduler(nearest(TILE), { batchSize: 8, memoryBudgetBytes: 64 * 2 ** 20, maxQueuedTiles: 1 << 20 }, { batch: sample });
await scheduler.submit(task);
sample();
const afterTiles = usage();
const outputs = await task.encode("png", 85);
sample();
clearInterval(timer);
console.log(
  JSON.stringify({
    size: `${width}x${height}`,
    scales,
    tiles: task.tiles,
    outputsMB: outputs.map((o) => MB(o.bytes.length)),
    rssBaseMB: MB(base),
    rssAfterTilesMB: MB(afterTiles - base),
    rssPeakOverBaseMB: MB(peak - base),
    estimateMB: MB(taskMemoryBytes(width, height, scales, image.alpha !== undefined)),
  }),
);
