import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { basename, extname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { AUTO_CLEANUP, DEFAULT_CLEANUP, DEFAULT_QUALITY, DomainError, MAX_QUALITY, MIN_QUALITY, OUTPUT_FORMATS, SCALES, cleanupSchema, outputFormatSchema, qualitySchema, scaleListSchema } from "@hvar/contract";
import { z } from "zod";
import { RunnerConfigSchema } from "../config";
import { decodeImage } from "../image/decode";
import { ORT_VERSION } from "../model/graph-cache";
import { discoverModels, servedCleanup, servedTemperature, tileOverlap } from "../model/manifest";
import { ModelSession } from "../model/session";
import { Scheduler } from "../scheduler/scheduler";
import { UpscaleTask } from "../tiling/task";
import { checkInputs } from "./inputs";
import { ProgressBar, type TextOut } from "./progress";

/** The HTTP runner's settings, as the CLI's defaults: one source for both. */
const settings = RunnerConfigSchema.shape;
const defaults = RunnerConfigSchema.parse({});

const USAGE = `Usage: hvar-runner upscale <image>... [options]
       hvar-runner serve            (the HTTP runner; configured by environment, see gpu-runner/README.md)
       hvar-runner --version [--models-dir <dir>] [--model <id>]

Upscales image files with the local model: x1 (cleaned), x2 and x4, written as <name>.x<scale>.<ext>.

Options:
  --out <dir>            output folder (default: .)
  --scales <list>        any of ${SCALES.join(",")} (default: ${SCALES.join(",")})
  --format <fmt>         ${OUTPUT_FORMATS.join(" | ")} (default: png)
  --quality <${MIN_QUALITY}-${MAX_QUALITY}>      for lossy formats (default: ${DEFAULT_QUALITY})
  --temperature <t>      0 = greedy; a deterministic model (tokens 0) ignores it (default: 0)
  --cleanup <0-1|auto>   how strongly x1 cleans the input before upscaling; 0 keeps its grain; auto:
                         1 for a noisy photo, else ${DEFAULT_CLEANUP}; a model without the setting
                         cleans fully (default: ${AUTO_CLEANUP})
  --models-dir <dir>     where <id>/model.onnx and manifest.json live (default: gpu-runner/models)
  --model <id>           which model (default: the first found)
  --overlap <px>         LR pixels shared by neighbouring tiles (default: the model's, else tile/4)
  --batch <n>            tiles per model run (default: ${defaults.HVAR_BATCH_SIZE})
  --device <d>           auto | cuda | cpu (default: ${defaults.HVAR_DEVICE})
  --max-pixels <n>       refuse larger inputs (default: ${defaults.HVAR_MAX_INPUT_PIXELS})
  -h, --help             this text

Progress: a bar over tiles on a terminal, else a line per tenth of an image's tiles.
Defaults not given here are the HTTP runner's (gpu-runner/src/config.ts).
`;

const OptionsSchema = z.object({
  out: z.string().default("."),
  scales: scaleListSchema,
  format: outputFormatSchema.default("png"),
  quality: qualitySchema,
  temperature: z.coerce.number().min(0).default(0),
  cleanup: cleanupSchema.default(AUTO_CLEANUP),
  "models-dir": settings.HVAR_MODELS_DIR,
  model: settings.HVAR_MODEL,
  overlap: settings.HVAR_TILE_OVERLAP,
  batch: settings.HVAR_BATCH_SIZE,
  device: settings.HVAR_DEVICE,
  "max-pixels": settings.HVAR_MAX_INPUT_PIXELS,
});

const text = { type: "string" } as const;
const PARSE_OPTIONS = {
  out: text,
  scales: text,
  format: text,
  quality: text,
  temperature: text,
  cleanup: text,
  "models-dir": text,
  model: text,
  overlap: text,
  batch: text,
  device: text,
  "max-pixels": text,
  help: { type: "boolean", short: "h" },
} as const;

export interface CliIo {
  stdout: TextOut;
  stderr: TextOut;
}

/** Runs the CLI; returns the exit code (0 done, 1 some file failed, 2 usage error). */
export async function runCli(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "-h" || command === "--help") {
    io.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === "--version" || command === "-v") return printVersion(rest, io);
  if (command === "serve") {
    await import("../main");
    return 0;
  }
  if (command !== "upscale") return usageError(io, `unknown command '${command}'`);

  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: PARSE_OPTIONS,
    });
  } catch (error) {
    return usageError(io, error instanceof Error ? error.message : String(error));
  }
  if (parsed.values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const options = OptionsSchema.safeParse(parsed.values);
  if (!options.success) return usageError(io, z.prettifyError(options.error));
  if (parsed.positionals.length === 0) return usageError(io, "no input image given");
  const o = options.data;

  // Everything a user can get wrong is checked before the model is loaded: the files, the output
  // folder, then the model's name and the overlap against its tile.
  const inputs = await checkInputs(parsed.positionals, o["max-pixels"]);
  for (const { file, reason } of inputs.rejected) io.stderr.write(`${file}: failed: ${reason}\n`);
  if (inputs.accepted.length === 0) return 1;
  try {
    await mkdir(o.out, { recursive: true });
  } catch (error) {
    io.stderr.write(`hvar-runner: cannot create the output folder ${o.out}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  const log = pino({ level: "error" }, pino.destination(2));
  const { models, rejected } = await discoverModels(o["models-dir"]);
  const entry = o.model ? models.find((m) => m.manifest.id === o.model) : models[0];
  if (!entry) {
    const reasons = rejected.map((r) => `\n  ${r.dir}: ${r.reason}`).join("");
    io.stderr.write(`hvar-runner: no usable model${o.model ? ` '${o.model}'` : ""} in ${o["models-dir"]}${reasons}\n`);
    return 1;
  }
  if (o.overlap !== undefined && o.overlap * 2 > entry.manifest.tile) {
    return usageError(io, `--overlap ${o.overlap} is more than half the tile of model ${entry.manifest.id} (${entry.manifest.tile})`);
  }
  const graphCacheDir = settings.HVAR_GRAPH_CACHE_DIR.parse(process.env.HVAR_GRAPH_CACHE_DIR) || undefined;
  const session = await ModelSession.load(entry, { device: o.device, cudaDeviceId: defaults.HVAR_CUDA_DEVICE_ID, cpuThreads: defaults.HVAR_CPU_THREADS, graphCacheDir }, log);
  io.stderr.write(`model ${entry.manifest.id} ${entry.manifest.version} (tile ${entry.manifest.tile}${entry.manifest.tileStep === undefined ? "" : `, fitted in steps of ${entry.manifest.tileStep}`}) on ${session.provider.toUpperCase()}\n`);
  // One file at a time: the queue never holds more than one job.
  const scheduler = new Scheduler(session, { batchSize: o.batch, memoryBudgetBytes: defaults.HVAR_MEMORY_BUDGET_MB * 1024 * 1024, maxQueuedTiles: Number.MAX_SAFE_INTEGER });

  let failures = inputs.rejected.length;
  for (const { file } of inputs.accepted) {
    const bar = new ProgressBar(io.stderr, basename(file));
    try {
      const image = await decodeImage(await readFile(file), { maxPixels: o["max-pixels"] });
      const task = await UpscaleTask.create(image, {
        scales: o.scales,
        tile: entry.manifest.tile,
        tileStep: entry.manifest.tileStep,
        overlap: tileOverlap(entry.manifest, o.overlap),
        temperature: servedTemperature(entry.manifest, o.temperature),
        cleanup: servedCleanup(entry.manifest, o.cleanup),
        onProgress: (done, total) => bar.update(done, total),
      });
      await scheduler.submit(task);
      const written: string[] = [];
      for (const output of await task.encode(o.format, o.quality)) {
        const path = join(o.out, `${basename(file, extname(file))}.x${output.scale}.${output.format}`);
        await writeFile(path, output.bytes);
        written.push(`${resolve(path)} (${output.width}x${output.height})`);
      }
      bar.finish(`${file}: ${task.tiles} tiles, clean-up ${task.settings.cleanup} -> ${written.join(", ")}`);
    } catch (error) {
      failures++;
      const message = error instanceof DomainError ? `${error.code}: ${error.title}` : error instanceof Error ? error.message : String(error);
      bar.finish(`${file}: failed: ${message}`);
    }
  }
  await session.release();
  return failures === 0 ? 0 : 1;
}

/**
 * The runner's version, onnxruntime's, and the model `upscale` would load (found and checked, not
 * loaded): what a bug report needs.
 */
async function printVersion(args: string[], io: CliIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args, options: { "models-dir": text, model: text } }));
  } catch (error) {
    return usageError(io, error instanceof Error ? error.message : String(error));
  }
  const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };
  const modelsDir = values["models-dir"] ?? defaults.HVAR_MODELS_DIR;
  const { models } = await discoverModels(modelsDir);
  const entry = values.model ? models.find((m) => m.manifest.id === values.model) : models[0];
  io.stdout.write(`hvar-runner ${version} (onnxruntime ${ORT_VERSION}, node ${process.versions.node})\n`);
  io.stdout.write(entry ? `model ${entry.manifest.id} ${entry.manifest.version} (tile ${entry.manifest.tile}, ${entry.manifest.precision}) (${entry.onnxPath})\n` : `model: none usable${values.model ? ` named '${values.model}'` : ""} in ${modelsDir}\n`);
  return 0;
}

function usageError(io: CliIo, message: string): number {
  io.stderr.write(`hvar-runner: ${message}\n\n${USAGE}`);
  return 2;
}
