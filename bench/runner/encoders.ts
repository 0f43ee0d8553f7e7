/**
 * What encoding the runner's outputs costs, per format: the served encoder settings
 * (gpu-runner/src/image/encode.ts) beside other efforts of the same encoders, on what the runner
 * encodes: the x4 of the demo's four photos (cut to 480x270, so x4 is 1920x1080) made by the served
 * model through the runner's own tiling. Time is the median of `--rounds`, every setting once per round
 * in turn, with the CPU time it took (the process's, all threads: what sizing a runner's CPUs needs);
 * size is the mean per image; PSNR-Y and PSNR-CbCr (BT.601, as quality.ts) are the decoded file against
 * the image encoded, so that a faster setting is seen to keep the picture at the same `quality` or not
 * (chroma subsampling shows in CbCr alone). Last, how long a file read waits while more AVIFs are
 * encoded than libuv has threads.
 *
 *   npm run bench:encoders                       # quality 85, the API's default
 *   npm run bench:encoders -- --quality 90 --rounds 5
 */
import { readFile } from "node:fs/promises";
import { setTimeout } from "node:timers/promises";
import { parseArgs } from "node:util";
import { DEFAULT_QUALITY, type OutputFormat } from "@hvar/contract";
import sharp from "sharp";
import { z } from "zod";
import { ENCODERS, avifQuality, encodeImage, type EncoderSettings } from "../../gpu-runner/src/image/encode";
import { UV_THREADS, VIPS_THREADS } from "../../gpu-runner/src/image/encode-slots";
import { type Raw, servedOutputs } from "./images";
import { psnrCbCr, psnrY } from "./quality";

const ArgsSchema = z.object({
  "models-dir": z.string().default("gpu-runner/models"),
  quality: z.coerce.number().int().min(1).max(100).default(DEFAULT_QUALITY),
  rounds: z.coerce.number().int().min(1).default(3),
});
const text = { type: "string" } as const;
const args = ArgsSchema.parse(parseArgs({ options: { "models-dir": text, quality: text, rounds: text } }).values);

/**
 * Other efforts of each served encoder, on the runner's libvips threads (VIPS_THREADS) unless a row
 * names its own; the served settings come first, and again on one thread (sharp's default on glibc,
 * the runner's until 2026-12-05).
 */
type Candidate = [label: string, settings: EncoderSettings, threads?: number];
const CANDIDATES: Record<OutputFormat, Candidate[]> = {
  png: [["compression 3", { format: "png", options: { compressionLevel: 3 } }]],
  webp: [
    ["effort 3", { format: "webp", options: { effort: 3 } }],
    ["effort 2", { format: "webp", options: { effort: 2 } }],
  ],
  avif: [
    ["effort 3, chroma 4:2:0", { format: "avif", options: { effort: 3, chromaSubsampling: "4:2:0" } }],
    ["effort 4, chroma 4:4:4 (sharp's defaults, served until 2026-12-05)", { format: "avif", options: { effort: 4 } }],
    ["effort 2, chroma 4:2:0", { format: "avif", options: { effort: 2, chromaSubsampling: "4:2:0" } }],
  ],
  jpeg: [
    ["libjpeg-turbo, Huffman optimised", { format: "jpeg", options: { optimiseCoding: true } }],
    ["libjpeg-turbo, progressive", { format: "jpeg", options: { optimiseCoding: true, progressive: true } }],
    ["trellis quantisation alone", { format: "jpeg", options: { optimiseCoding: true, trellisQuantisation: true } }],
  ],
};

/** `settings` at the API's `--quality`: AVIF's own quality is the one the runner maps it to (encode.ts, avifQuality). */
function encode(image: Raw, settings: EncoderSettings): Promise<Buffer> {
  const pipeline = sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } });
  const quality = settings.format === "png" ? {} : { quality: settings.format === "avif" ? avifQuality(args.quality) : args.quality };
  return pipeline.toFormat(settings.format, { ...settings.options, ...quality }).toBuffer();
}

/** PSNR-Y and PSNR-CbCr of the decoded file against the image encoded (quality.ts, nothing shaved). */
async function fidelity(image: Raw, file: Buffer): Promise<[number, number]> {
  const decoded = await sharp(file).removeAlpha().raw().toBuffer();
  return [psnrY(image.rgb, decoded, image.width, image.height, 0), psnrCbCr(image.rgb, decoded, image.width, image.height, 0)];
}

const images = await servedOutputs(args["models-dir"]);
const served = (format: OutputFormat): Candidate[] => [
  ["served", ENCODERS[format]],
  ...(VIPS_THREADS > 1 ? [["served, one libvips thread", ENCODERS[format], 1] as Candidate] : []),
];
const rows = (Object.keys(CANDIDATES) as OutputFormat[]).flatMap((format) =>
  [...served(format), ...CANDIDATES[format]].map(([label, settings, threads = VIPS_THREADS]) => ({ format, label, settings, threads, ms: [] as number[], cpuMs: [] as number[], bytes: 0, psnr: 0, psnrChroma: 0 })),
);
for (let round = 0; round < args.rounds; round++) {
  console.error(`encoders: round ${round + 1} of ${args.rounds}`);
  for (const row of rows) {
    let ms = 0;
    let cpuMs = 0;
    sharp.concurrency(row.threads);
    for (const image of images) {
      const [started, cpu] = [performance.now(), process.cpuUsage()];
      const file = await encode(image, row.settings);
      ms += performance.now() - started;
      const used = process.cpuUsage(cpu);
      cpuMs += (used.user + used.system) / 1000;
      if (round === 0) {
        row.bytes += file.length / images.length;
        const [y, chroma] = await fidelity(image, file);
        row.psnr += y / images.length;
        row.psnrChroma += chroma / images.length;
      }
    }
    row.ms.push(ms / images.length);
    row.cpuMs.push(cpuMs / images.length);
  }
}
sharp.concurrency(VIPS_THREADS);
const decibels = (psnr: number) => (psnr === Infinity ? "lossless" : psnr.toFixed(2));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
const megapixels = (images[0] as Raw).width * (images[0] as Raw).height / 1e6;
console.log(`Encoding the x4 (${(images[0] as Raw).width}x${(images[0] as Raw).height}) of the demo's ${images.length} photos, quality ${args.quality} (AVIF's own ${avifQuality(args.quality)}), on ${VIPS_THREADS} libvips thread(s) unless said, the median of ${args.rounds} rounds; PSNR-Y and PSNR-CbCr of the decoded file against the image encoded`);
console.log("");
console.log("| format | settings | ms per image | MP/s | time against served | CPU ms per MP | KB per image | size against served | PSNR-Y (dB) | PSNR-CbCr (dB) |");
console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const row of rows) {
  const baseline = rows.find((r) => r.format === row.format && r.label === "served") as (typeof rows)[number];
  const ms = median(row.ms);
  const options = JSON.stringify(row.settings.options).replace(/"/g, "");
  console.log(`| ${row.format} | ${row.label} ${options} | ${ms.toFixed(0)} | ${(megapixels / (ms / 1000)).toFixed(1)} | ${(ms / median(baseline.ms)).toFixed(2)}x | ${(median(row.cpuMs) / megapixels).toFixed(0)} | ${(row.bytes / 1024).toFixed(0)} | ${(row.bytes / baseline.bytes).toFixed(3)}x | ${decibels(row.psnr)} | ${decibels(row.psnrChroma)} |`);
}

/**
 * How long a file read waits while more outputs are encoded than libuv has threads: through the
 * runner's encodeImage, which leaves two threads free (image/encode-slots.ts), and straight through
 * sharp, as the runner encoded until 2026-12-05.
 */
async function readWhileEncoding(image: Raw, through: "runner" | "sharp"): Promise<[number, number]> {
  const started = performance.now();
  const encodes = Array.from({ length: UV_THREADS + 2 }, () =>
    through === "runner" ? encodeImage(image, "avif", args.quality) : encode(image, ENCODERS.avif),
  );
  await setTimeout(20);
  const reading = performance.now();
  await readFile("package.json");
  const read = performance.now() - reading;
  await Promise.all(encodes);
  return [read, performance.now() - started];
}

console.log("");
for (const through of ["runner", "sharp"] as const) {
  const [read, all] = await readWhileEncoding(images[0] as Raw, through);
  const how = through === "runner" ? "through the runner's encodeImage" : "straight through sharp (until 2026-12-05)";
  console.log(`A file read meanwhile, ${UV_THREADS + 2} AVIF encodes on ${UV_THREADS} libuv threads ${how}: ${read.toFixed(0)} ms (the encodes ${all.toFixed(0)} ms).`);
}
