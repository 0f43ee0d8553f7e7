/**
 * The runner with the shipped model, honestly: x4 throughput through the runner's own code (tiling with
 * reflection, scheduler, onnxruntime session, blending) against batch size and tile overlap, then x4
 * against the strongest CPU peers, each through the same runner path and onnxruntime settings:
 * SPAN-ch28 and RLFN x4 as published (peers.ts), with sharp's bicubic and Lanczos3 as the classic
 * baselines. Quality is PSNR-Y on Set5 with its standard MATLAB-bicubic LR (the published numbers'
 * protocol); speed is x4 output megapixels per second on synthetic images (images.ts), the median of
 * `--rounds` rounds that each time every setting (or method) once, in turn: a shared machine drifts by
 * tens of percent within a minute, and timing one after another put that drift between them.
 *
 *   npm run bench:runner                                   # the shipped model, CPU (bench/runner/README.md)
 *   npm run bench:runner -- --device cuda --batches 1,8,32 --size 1920x1080
 */
import { readFileSync } from "node:fs";
import { DEFAULT_CLEANUP } from "@hvar/contract";
import { availableParallelism, cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { pino } from "pino";
import sharp from "sharp";
import { z } from "zod";
import { loadConfig } from "../../gpu-runner/src/config";
import { decodeImage } from "../../gpu-runner/src/image/decode";
import { discoverModels, type ModelEntry, tileOverlap } from "../../gpu-runner/src/model/manifest";
import { checkContract, createSession, runBatch } from "../../gpu-runner/src/model/onnx";
import { ModelSession } from "../../gpu-runner/src/model/session";
import type { TileModel } from "../../gpu-runner/src/model/types";
import { Scheduler } from "../../gpu-runner/src/scheduler/scheduler";
import { UpscaleTask } from "../../gpu-runner/src/tiling/task";
import { syntheticImage } from "./images";
import { peerModels } from "./peers";
import { type Pair, psnrY, set5x4 } from "./quality";
import { upscale as resample } from "./resample";

const numbers = (s: string) => s.split(",").filter(Boolean).map((v) => Number(v.trim()));
const size = (s: string) => s.split("x").map(Number) as [number, number];
const ArgsSchema = z.object({
  "models-dir": z.string().default("gpu-runner/models"),
  /** Which model of the folder; default the one the runner serves (the first by folder name). */
  model: z.string().optional(),
  device: z.enum(["auto", "cuda", "cpu"]).default("cpu"),
  /** CPU intra-op threads; 0 = all cores (the runner's default). */
  threads: z.coerce.number().int().min(0).default(0),
  batches: z.string().default("1,4,8,16").transform(numbers),
  /** LR pixels; default: none, the model's served overlap, and a quarter tile. */
  overlaps: z.string().optional().transform((s) => (s === undefined ? undefined : numbers(s))),
  /** Batch of the comparison runs (the runner's HVAR_BATCH_SIZE default). */
  batch: z.coerce.number().int().min(1).default(8),
  /** LR size of the synthetic images that time everything (480x270: x4 gives 1920x1080). */
  size: z.string().default("480x270").transform(size),
  images: z.coerce.number().int().min(1).default(2),
  /** Rounds of the sweep and of the comparison: every setting or method timed once per round, in turn; the report takes the median. */
  rounds: z.coerce.number().int().min(1).default(5),
  "skip-peers": z.boolean().default(false),
  /** Folders of more runner models to compare (e.g. model/runs/prev, earlier versions exported there). */
  "peer-models": z
    .string()
    .default("")
    .transform((s) => s.split(",").filter(Boolean)),
  json: z.boolean().default(false),
});

const text = { type: "string" } as const;
const args = ArgsSchema.parse(
  parseArgs({
    options: { "models-dir": text, model: text, device: text, threads: text, batches: text, overlaps: text, batch: text, size: text, images: text, rounds: text, "skip-peers": { type: "boolean" }, "peer-models": text, json: { type: "boolean" } },
  }).values,
);
const log = pino({ level: "warn" });
const note = (line: string) => process.stderr.write(`${line}\n`);
const loadAtStart = loadavg();

const { models } = await discoverModels(args["models-dir"]);
const served = args.model ? models.find((m) => m.manifest.id === args.model) : models[0];
if (!served) throw new Error(`no usable model${args.model ? ` '${args.model}'` : ""} in ${args["models-dir"]}`);
const { tile } = served.manifest;
const sessionOptions = { device: args.device, cudaDeviceId: 0, cpuThreads: args.threads, graphCacheDir: loadConfig({}).HVAR_GRAPH_CACHE_DIR };
const [width, height] = args.size;
const images = await Promise.all(Array.from({ length: args.images }, (_, i) => syntheticImage(width, height, i + 1).then((png) => decodeImage(png, { maxPixels: width * height }))));
type Image = (typeof images)[number];

const scheduler = (model: TileModel, batchSize: number) => new Scheduler(model, { batchSize, memoryBudgetBytes: 16 * 1024 ** 3, maxQueuedTiles: Number.MAX_SAFE_INTEGER });

/** How a model's tiles are cut: its manifest's side and step (peers were exported for the served model's, hvar's older versions not). */
type Tiling = Pick<ModelEntry["manifest"], "tile" | "tileStep">;
const servedTiling: Tiling = { tile, tileStep: served.manifest.tileStep };

/**
 * x4 of one image through the runner's path; the x4 image stays as floats in the blender (no encoding).
 * No `cleanup`: the job's default, `auto`, which reads the image's noise first, as a job does.
 */
async function upscale(run: Scheduler, image: Image, overlap: number, tiling = servedTiling, cleanup?: number): Promise<UpscaleTask> {
  const task = await UpscaleTask.create(image, { scales: [4], tile: tiling.tile, tileStep: tiling.tileStep, overlap, temperature: 0, ...(cleanup === undefined ? {} : { cleanup }) });
  await run.submit(task);
  return task;
}

interface Timing {
  tiles: number;
  seconds: number;
  cpuSeconds: number;
  outputMp: number;
  /** The longest the thread that serves the runner's HTTP requests was held at once: no answer meanwhile. */
  longestStallMs: number;
}

/** One timed pass of `x4` over every image (tiles: those of the runner's tasks, 0 for a resampler). */
async function timeOnce(x4: (image: Image) => Promise<unknown>): Promise<Timing> {
  const timing: Timing = { tiles: 0, seconds: 0, cpuSeconds: 0, outputMp: 0, longestStallMs: 0 };
  const stalls = stallMeter();
  for (const image of images) {
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const out = await x4(image);
    timing.seconds += (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    timing.cpuSeconds += (cpu.user + cpu.system) / 1e6;
    timing.tiles += out instanceof UpscaleTask ? out.tiles : 0;
    timing.outputMp += (16 * image.width * image.height) / 1e6;
  }
  timing.longestStallMs = stalls();
  return timing;
}

/**
 * Measures the longest gap between turns of the event loop (a timer due every millisecond) from now to
 * the call of the function it returns, the time since the last turn included: a pass that never
 * yields is one stall of its whole length.
 */
function stallMeter(): () => number {
  let last = performance.now();
  let longest = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  return () => {
    clearInterval(tick);
    return Math.max(longest, performance.now() - last);
  };
}

const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

/**
 * Each of `passes` timed `args.rounds` times, in turn, so that the machine's drift falls on all alike
 * (callers run each once untimed first: JIT compilation and first allocations are not counted).
 */
async function timeInRounds(passes: (() => Promise<Timing>)[], label: string): Promise<Timing[][]> {
  const timings = passes.map((): Timing[] => []);
  for (let round = 1; round <= args.rounds; round++) {
    note(`${label}: round ${round} of ${args.rounds}`);
    for (const [i, pass] of passes.entries()) timings[i]?.push(await pass());
  }
  return timings;
}

// ---- 1. the served model against batch size and overlap --------------------------------------------
const session = await ModelSession.load(served, sessionOptions, log);
const overlaps = args.overlaps ?? [...new Set([0, tileOverlap(served.manifest, undefined), Math.floor(tile / 4)])].sort((a, b) => a - b);
interface SweepRow {
  batch: number;
  overlap: number;
  tilesPerImage: number;
  tilesPerSecond: number;
  cpuMsPerTile: number;
  outputMpPerSecond: number;
  secondsPerImage: number;
  longestStallMs: number;
}
const settings = overlaps.flatMap((overlap) => args.batches.map((batch) => ({ overlap, run: scheduler(session, batch) })));
for (const { overlap, run } of settings) await upscale(run, images[0] as Image, overlap); // untimed: the first run
const sweepTimings = await timeInRounds(settings.map(({ overlap, run }) => () => timeOnce((image) => upscale(run, image, overlap))), "sweep");
const sweep: SweepRow[] = settings.map(({ overlap, run }, i) => {
  const t = sweepTimings[i] as Timing[];
  const tiles = (t[0] as Timing).tiles;
  return {
    batch: run.maxBatch,
    overlap,
    tilesPerImage: tiles / images.length,
    tilesPerSecond: median(t.map((r) => r.tiles / r.seconds)),
    cpuMsPerTile: median(t.map((r) => (1000 * r.cpuSeconds) / r.tiles)),
    outputMpPerSecond: median(t.map((r) => r.outputMp / r.seconds)),
    secondsPerImage: median(t.map((r) => r.seconds / images.length)),
    longestStallMs: median(t.map((r) => r.longestStallMs)),
  };
});

// ---- 2. x4 against the peers: Set5 PSNR-Y, speed on the same synthetic images -----------------------
interface MethodRow {
  method: string;
  parameters: number | null;
  set5PsnrY: number;
  outputMpPerSecond: number;
  cpuSecondsPerMp: number;
  longestStallMs: number;
}
/** A method to compare: its Set5 score, measured once, and one timed pass over the images. */
interface Method {
  label: string;
  parameters: number | null;
  set5PsnrY: number;
  time(): Promise<Timing>;
}
const methods: Method[] = [];
const set5 = args["skip-peers"] ? [] : await set5x4();
const sessions: { release(): Promise<void> }[] = [];

async function meanPsnr(pairs: Pair[], x4: (pair: Pair) => Promise<Uint8Array>): Promise<number> {
  let sum = 0;
  for (const pair of pairs) sum += psnrY(await x4(pair), pair.hr, 4 * pair.width, 4 * pair.height, 4);
  return sum / pairs.length;
}

async function addModel(label: string, entry: ModelEntry, model: TileModel, cleanup?: number): Promise<void> {
  note(`comparison: ${label}`);
  const overlap = tileOverlap(entry.manifest, undefined);
  const run = scheduler(model, args.batch);
  const set5PsnrY = await meanPsnr(set5, async ({ lr, width: w, height: h }) => {
    const task = await upscale(run, { width: w, height: h, rgb: lr, format: "raw" }, overlap, entry.manifest, cleanup);
    const [x4] = await task.encode("png", 90); // lossless: the 8-bit image the runner would store
    return sharp(x4?.bytes).removeAlpha().raw().toBuffer();
  });
  await upscale(run, images[0] as Image, overlap, entry.manifest, cleanup); // untimed: this size's first run
  // The exports write it beside the contract's fields, which the runner's schema keeps alone.
  const { parameters } = JSON.parse(readFileSync(join(dirname(entry.onnxPath), "manifest.json"), "utf8")) as { parameters?: number };
  methods.push({ label, parameters: parameters ?? null, set5PsnrY, time: () => timeOnce((image) => upscale(run, image, overlap, entry.manifest, cleanup)) });
}

/** The model's onnxruntime session run in place, on this thread (onnxruntime-node's run() holds it for the batch). */
async function onCallingThread(entry: ModelEntry): Promise<TileModel & { release(): Promise<void> }> {
  const onnx = await createSession(entry, sessionOptions, log);
  checkContract(onnx.session, entry);
  const { tile, tokens } = entry.manifest;
  return {
    tile,
    tokens,
    run: (lr, noise, n, settings, shape = { height: tile, width: tile }) => runBatch(onnx, entry, lr, noise, n, settings, shape),
    release: () => onnx.session.release(),
  };
}

/** A classic upscaler: interleaved RGB in, x4 interleaved RGB out. */
type Resize = (rgb: Buffer, w: number, h: number) => Promise<Uint8Array>;

async function addResize(label: string, resize: Resize): Promise<void> {
  note(`comparison: ${label}`);
  const set5PsnrY = await meanPsnr(set5, ({ lr, width: w, height: h }) => resize(lr, w, h));
  await resize((images[0] as Image).rgb, width, height);
  methods.push({ label, parameters: null, set5PsnrY, time: () => timeOnce((image) => resize(image.rgb, image.width, image.height)) });
}

const rows: MethodRow[] = [];
if (!args["skip-peers"]) {
  await addModel(`${served.manifest.id} ${served.manifest.version}`, served, session);
  // The same model run on the calling thread, as the runner did until 2026-12-05: what its own thread costs.
  const inPlace = await onCallingThread(served);
  sessions.push(inPlace);
  await addModel(`${served.manifest.id} ${served.manifest.version} on the runner's thread`, served, inPlace);
  // The same model at a fixed strength: what reading each image's noise (cleanup=auto) costs.
  if (served.manifest.cleanup) await addModel(`${served.manifest.id} ${served.manifest.version} at cleanup ${DEFAULT_CLEANUP} (no noise read)`, served, session, DEFAULT_CLEANUP);
  const others = [...(await peerModels(tile, served.manifest.tileStep, note))];
  for (const dir of args["peer-models"]) others.push(...(await discoverModels(dir)).models.filter((m) => m.manifest.sha256 !== served.manifest.sha256));
  for (const entry of others) {
    const model = await ModelSession.load(entry, sessionOptions, log);
    sessions.push(model);
    await addModel(`${entry.manifest.id} ${entry.manifest.version}`, entry, model);
  }
  await addResize("bicubic (MATLAB's convention, resample.ts)", async (rgb, w, h) => resample(rgb, w, h, 4, "cubic"));
  await addResize("Lanczos3 (resample.ts)", async (rgb, w, h) => resample(rgb, w, h, 4, "lanczos3"));
  await addResize("sharp resize x4 (libvips bicubic, whatever the kernel)", (rgb, w, h) => sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).resize(4 * w, 4 * h).raw().toBuffer());
  const timings = await timeInRounds(methods.map((m) => () => m.time()), "comparison");
  for (const [i, m] of methods.entries()) {
    const t = timings[i] as Timing[];
    rows.push({ method: m.label, parameters: m.parameters, set5PsnrY: m.set5PsnrY, outputMpPerSecond: median(t.map((r) => r.outputMp / r.seconds)), cpuSecondsPerMp: median(t.map((r) => r.cpuSeconds / r.outputMp)), longestStallMs: median(t.map((r) => r.longestStallMs)) });
  }
}
for (const model of [session, ...sessions]) await model.release();

// ---- report -------------------------------------------------------------------------------------------
const machine = `${availableParallelism()} CPUs (${cpus()[0]?.model ?? "?"}), load average ${loadAtStart[0]?.toFixed(1)} at the start, ${loadavg()[0]?.toFixed(1)} at the end`;
if (args.json) {
  console.log(JSON.stringify({ model: served.manifest.id, version: served.manifest.version, provider: session.provider, machine, size: args.size, images: args.images, sweep, batch: args.batch, rounds: args.rounds, methods: rows }, null, 2));
} else {
  const threads = args.threads > 0 ? args.threads : availableParallelism();
  const tiles = served.manifest.tileStep === undefined ? `tile ${tile}` : `tiles fitted to each image, up to ${tile} px in steps of ${served.manifest.tileStep}`;
  console.log(`model ${served.manifest.id} ${served.manifest.version} (${tiles}), provider ${session.provider}${session.provider === "cpu" ? ` (${threads} threads)` : ""}, ${machine}`);
  console.log("");
  console.log(`x4 of ${images.length} synthetic ${width}x${height} images through the runner (tiling, scheduler, onnxruntime, blending; no encoding), the median of ${args.rounds} interleaved rounds`);
  console.log("");
  console.log("| batch | overlap (px) | tiles/image | tiles/s | CPU ms/tile | x4 output MP/s | s/image | longest stall (ms) |");
  console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const r of sweep) console.log(`| ${r.batch} | ${r.overlap} | ${r.tilesPerImage} | ${r.tilesPerSecond.toFixed(1)} | ${r.cpuMsPerTile.toFixed(0)} | ${r.outputMpPerSecond.toFixed(2)} | ${r.secondsPerImage.toFixed(2)} | ${r.longestStallMs.toFixed(0)} |`);
  if (rows.length > 0) {
    console.log("");
    console.log(`x4: PSNR-Y on Set5 (MATLAB-bicubic LR, 4 px shaved); speed on the ${width}x${height} images, networks through the runner at batch ${args.batch} and their served overlap, the median of ${args.rounds} interleaved rounds`);
    console.log("");
    console.log("| method | parameters | Set5 PSNR-Y (dB) | x4 output MP/s | CPU s per output MP | longest stall (ms) |");
    console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (const r of rows) console.log(`| ${r.method} | ${r.parameters?.toLocaleString("en") ?? ""} | ${r.set5PsnrY.toFixed(2)} | ${r.outputMpPerSecond.toFixed(2)} | ${r.cpuSecondsPerMp.toFixed(2)} | ${r.longestStallMs.toFixed(0)} |`);
  }
}
