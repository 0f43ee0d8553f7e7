/**
 * 1. Runner throughput: tiles/s and output megapixels/s against batch size and tile overlap, through
 *    the real pipeline (decode, tiling, scheduler, ONNX session, blending, PNG encoding).
 * 2. x4 against the peer a JavaScript user would pick, on the same images: UpscalerJS ESRGAN slim and
 *    thick (tfjs, wasm backend), with sharp's Lanczos as the classic baseline: PSNR (Y, 4 px shaved)
 *    against the HR image the LR input was made from (sharp bicubic), and x4 output MP/s.
 *
 *   npx tsx bench/runner/bench.ts                                   # contract fixture model, CPU
 *   npx tsx bench/runner/bench.ts --models-dir gpu-runner/models --device cuda --batches 1,8,16,32
 *
 * Until the trained model lands, the default is the contract fixture (test/gpu-runner/fixtures): its
 * graph is trivial (x4 is bilinear), so the numbers measure the runner around the model, not a model.
 */
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { SCALES } from "@hvar/contract";
import sharp from "sharp";
import { pino } from "pino";
import { z } from "zod";
import { decodeImage } from "../../gpu-runner/src/image/decode";
import { discoverModels, tileOverlap } from "../../gpu-runner/src/model/manifest";
import { ModelSession } from "../../gpu-runner/src/model/session";
import { Scheduler } from "../../gpu-runner/src/scheduler/scheduler";
import { UpscaleTask } from "../../gpu-runner/src/tiling/task";
import { syntheticImage } from "./images";
import { loadPeer, PEER_MODELS, useWasmBackend, type PeerName } from "./peer";
import { psnrY } from "./quality";

const list = (s: string) => s.split(",").map((v) => Number(v.trim()));
const ArgsSchema = z.object({
  "models-dir": z.string().default("test/gpu-runner/fixtures"),
  device: z.enum(["auto", "cuda", "cpu"]).default("cpu"),
  threads: z.coerce.number().int().min(0).default(0),
  batches: z.string().default("1,4,8,16").transform(list),
  /** As fractions of the tile: 0, 1/8, 1/4 (the default), 1/2. */
  overlaps: z.string().default("0,0.125,0.25").transform(list),
  size: z
    .string()
    .default("512x384")
    .transform((s) => s.split("x").map(Number) as [number, number]),
  images: z.coerce.number().int().min(1).default(3),
  /** LR size of the x4 comparison images (their HR is 4x this). */
  "peer-size": z
    .string()
    .default("64x48")
    .transform((s) => s.split("x").map(Number) as [number, number]),
  "skip-peer": z.boolean().default(false),
  /** Folders of more models (e.g. the pretrained network the model started from), run by the runner in the x4 comparison. */
  "peer-models": z
    .string()
    .default("")
    .transform((s) => s.split(",").filter(Boolean)),
  json: z.boolean().default(false),
});

const text = { type: "string" } as const;
const { values } = parseArgs({
  options: { "models-dir": text, device: text, threads: text, batches: text, overlaps: text, size: text, images: text, "peer-size": text, "skip-peer": { type: "boolean" }, "peer-models": text, json: { type: "boolean" } },
});
const args = ArgsSchema.parse(values);
const log = pino({ level: "warn" });

const { models } = await discoverModels(args["models-dir"]);
const entry = models[0];
if (!entry) throw new Error(`no usable model in ${args["models-dir"]}`);
const session = await ModelSession.load(entry, { device: args.device, cudaDeviceId: 0, cpuThreads: args.threads }, log);
const [width, height] = args.size;
const inputs = await Promise.all(Array.from({ length: args.images }, (_, i) => syntheticImage(width, height, i + 1).then((png) => decodeImage(png, { maxPixels: width * height }))));
const tile = entry.manifest.tile;

interface Row {
  batch: number;
  overlap: number;
  tiles: number;
  tilesPerSecond: number;
  /** Process CPU time per tile: steadier than wall time on a shared machine. */
  cpuMsPerTile: number;
  outputMpPerSecond: number;
  secondsPerImage: number;
}

// One full pass first, untimed, so that JIT compilation of the tiling code is not charged to the
// first configuration of the grid.
await new Scheduler(session, { batchSize: 8, memoryBudgetBytes: 16 * 1024 ** 3, maxQueuedTiles: Number.MAX_SAFE_INTEGER }).submit(
  new UpscaleTask(inputs[0] as (typeof inputs)[0], { scales: [...SCALES], tile, overlap: tileOverlap(entry.manifest, undefined), temperature: 0 }),
);

const rows: Row[] = [];
for (const overlapFraction of args.overlaps) {
  const overlap = Math.round(tile * overlapFraction);
  for (const batch of args.batches) {
    const scheduler = new Scheduler(session, { batchSize: batch, memoryBudgetBytes: 16 * 1024 ** 3, maxQueuedTiles: Number.MAX_SAFE_INTEGER });
    // One image first, untimed, so allocation of this batch size is not counted.
    await scheduler.submit(new UpscaleTask(inputs[0] as (typeof inputs)[0], { scales: [1], tile, overlap, temperature: 0 }));
    let tiles = 0;
    let inferSeconds = 0;
    let totalSeconds = 0;
    let outputPixels = 0;
    let cpuMicros = 0;
    for (const image of inputs) {
      const cpuBefore = process.cpuUsage();
      const started = performance.now();
      const task = new UpscaleTask(image, { scales: [...SCALES], tile, overlap, temperature: 0 });
      await scheduler.submit(task);
      inferSeconds += (performance.now() - started) / 1000;
      const cpu = process.cpuUsage(cpuBefore);
      cpuMicros += cpu.user + cpu.system;
      const outputs = await task.encode("png", 90);
      totalSeconds += (performance.now() - started) / 1000;
      tiles += task.tiles;
      outputPixels += outputs.reduce((sum, o) => sum + o.width * o.height, 0);
    }
    rows.push({ batch: scheduler.maxBatch, overlap, tiles: tiles / inputs.length, tilesPerSecond: tiles / inferSeconds, cpuMsPerTile: cpuMicros / 1000 / tiles, outputMpPerSecond: outputPixels / 1e6 / totalSeconds, secondsPerImage: totalSeconds / inputs.length });
  }
}
interface PeerRow {
  method: string;
  psnr: number;
  outputMpPerSecond: number;
  cpuSecondsPerImage: number;
}

/** Times `run` over every LR image and scores its x4 output against the HR original. */
async function measure(method: string, pairs: { hr: Buffer; lr: Buffer }[], run: (lr: Buffer, w: number, h: number) => Promise<Uint8Array>): Promise<PeerRow> {
  const [w, h] = args["peer-size"];
  let seconds = 0;
  let cpuMicros = 0;
  let psnr = 0;
  for (const { hr, lr } of pairs) {
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    const sr = await run(lr, w, h);
    const cpu = process.cpuUsage(cpuBefore);
    seconds += (performance.now() - started) / 1000;
    cpuMicros += cpu.user + cpu.system;
    psnr += psnrY(sr, hr, 4 * w, 4 * h, 4);
  }
  return { method, psnr: psnr / pairs.length, outputMpPerSecond: (pairs.length * 16 * w * h) / 1e6 / seconds, cpuSecondsPerImage: cpuMicros / 1e6 / pairs.length };
}

const peerRows: PeerRow[] = [];
if (!args["skip-peer"]) {
  const [w, h] = args["peer-size"];
  // HR images, and LR made from them the way the benchmarks do (bicubic x1/4).
  const pairs = await Promise.all(
    Array.from({ length: args.images }, async (_, i) => {
      const png = await syntheticImage(4 * w, 4 * h, 100 + i);
      const hr = await sharp(png).removeAlpha().raw().toBuffer();
      const lr = await sharp(hr, { raw: { width: 4 * w, height: 4 * h, channels: 3 } }).resize(w, h, { kernel: "cubic" }).raw().toBuffer();
      return { hr, lr };
    }),
  );
  /** x4 of a model through the runner's own path, with the overlap it is served with. */
  const viaRunner = (model: ModelSession, manifest: typeof entry.manifest) => {
    const scheduler = new Scheduler(model, { batchSize: 8, memoryBudgetBytes: 16 * 1024 ** 3, maxQueuedTiles: Number.MAX_SAFE_INTEGER });
    return async (lr: Buffer, width: number, height: number) => {
      const task = new UpscaleTask({ width, height, rgb: lr, format: "raw" }, { scales: [4], tile: manifest.tile, overlap: tileOverlap(manifest, undefined), temperature: 0 });
      await scheduler.submit(task);
      const [x4] = await task.encode("png", 90);
      return sharp(x4?.bytes).raw().toBuffer();
    };
  };
  peerRows.push(await measure(`hvar runner (${entry.manifest.id} ${entry.manifest.version})`, pairs, viaRunner(session, entry.manifest)));
  for (const dir of args["peer-models"]) {
    for (const peer of (await discoverModels(dir)).models) {
      const peerSession = await ModelSession.load(peer, { device: args.device, cudaDeviceId: 0, cpuThreads: args.threads }, log);
      peerRows.push(await measure(`runner: ${peer.manifest.id} ${peer.manifest.version}`, pairs, viaRunner(peerSession, peer.manifest)));
      await peerSession.release();
    }
  }
  peerRows.push(await measure("sharp bicubic", pairs, (lr, width, height) => sharp(lr, { raw: { width, height, channels: 3 } }).resize(4 * width, 4 * height, { kernel: "cubic" }).raw().toBuffer()));
  peerRows.push(await measure("sharp Lanczos3 (classic)", pairs, (lr, width, height) => sharp(lr, { raw: { width, height, channels: 3 } }).resize(4 * width, 4 * height, { kernel: "lanczos3" }).raw().toBuffer()));
  await useWasmBackend(args.threads > 0 ? args.threads : cpus().length);
  for (const name of Object.keys(PEER_MODELS) as PeerName[]) {
    const peer = await loadPeer(name, 64, 6);
    peerRows.push(await measure(`UpscalerJS ${name} (tfjs wasm)`, pairs, (lr, width, height) => peer.upscale(lr, width, height)));
    await peer.close();
  }
}
await session.release();

if (args.json) {
  console.log(JSON.stringify({ model: entry.manifest, provider: session.provider, size: args.size, rows, peer: { size: args["peer-size"], rows: peerRows } }, null, 2));
} else {
  console.log(`model ${entry.manifest.id} ${entry.manifest.version} (tile ${tile}), provider ${session.provider}, ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), ${args.images} synthetic ${width}x${height} images, scales 1+2+4, PNG`);
  console.log("");
  console.log("| batch | overlap (px) | tiles/image | tiles/s (inference+blend) | CPU ms/tile | output MP/s (incl. PNG encode) | s/image |");
  console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const r of rows) console.log(`| ${r.batch} | ${r.overlap} | ${r.tiles} | ${r.tilesPerSecond.toFixed(0)} | ${r.cpuMsPerTile.toFixed(2)} | ${r.outputMpPerSecond.toFixed(2)} | ${r.secondsPerImage.toFixed(2)} |`);
}
if (!args.json && peerRows.length > 0) {
  const [w, h] = args["peer-size"];
  console.log("");
  console.log(`x4 on ${args.images} synthetic images, LR ${w}x${h} (bicubic from HR ${4 * w}x${4 * h}); PSNR on Y, 4 px shaved`);
  console.log("");
  console.log("| method | PSNR (dB) | x4 output MP/s | CPU s/image |");
  console.log("| --- | ---: | ---: | ---: |");
  for (const r of peerRows) console.log(`| ${r.method} | ${r.psnr.toFixed(2)} | ${r.outputMpPerSecond.toFixed(3)} | ${r.cpuSecondsPerImage.toFixed(2)} |`);
}
