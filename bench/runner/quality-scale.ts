/**
 * What the API's `quality` gives in each lossy format, on what the runner encodes (the served model's x2
 * and x4 of the demo photos, images.ts): the fidelity (PSNR-Y of the decoded file against the image encoded,
 * quality.ts) and size at every quality, JPEG (mozjpeg, the served encoder) beside WebP and AVIF; and for
 * each quality, the AVIF quality whose fidelity is JPEG's (interpolated on AVIF's curve), the table the
 * runner encodes AVIF by (gpu-runner/src/image/encode.ts, AVIF_QUALITY), then that table checked image
 * by image: the spread of the served AVIF's fidelity against the JPEG's. Last, a picture of what the numbers
 * mean at the default quality: a crop of one output, as encoded each way, enlarged (`--figure`).
 *
 *   npm run bench:quality-scale
 */
import { parseArgs } from "node:util";
import sharp from "sharp";
import { z } from "zod";
import { DEFAULT_QUALITY, type OutputFormat } from "@hvar/contract";
import { AVIF_QUALITY, ENCODERS, avifQuality } from "../../gpu-runner/src/image/encode";
import { type Raw, servedOutputs } from "./images";
import { psnrY } from "./quality";

const ArgsSchema = z.object({
  "models-dir": z.string().default("gpu-runner/models"),
  figure: z.string().default("bench/runner/quality-scale.png"),
});
const args = ArgsSchema.parse(parseArgs({ options: { "models-dir": { type: "string" }, figure: { type: "string" } } }).values);

type Lossy = Exclude<OutputFormat, "png">;
interface Point {
  quality: number;
  /** Mean PSNR-Y (dB) of the decoded files against the images encoded. */
  psnr: number;
  /** Each image's. */
  psnrs: number[];
  /** Mean file size, KB. */
  kb: number;
}

const range = (from: number, to: number, step: number) => Array.from({ length: Math.floor((to - from) / step) + 1 }, (_, i) => from + i * step);
const API_QUALITIES = range(10, 100, 5);

/** Each image at `quality` with the runner's settings for `format` (quality given as the encoder's own). */
async function measure(images: Raw[], format: Lossy, quality: number): Promise<Point> {
  const psnrs: number[] = [];
  let bytes = 0;
  for (const image of images) {
    const file = await sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } })
      .toFormat(format, { ...ENCODERS[format].options, quality })
      .toBuffer();
    const decoded = await sharp(file).removeAlpha().raw().toBuffer();
    psnrs.push(psnrY(image.rgb, decoded, image.width, image.height, 0));
    bytes += file.length / images.length;
  }
  return { quality, psnr: psnrs.reduce((a, b) => a + b, 0) / psnrs.length, psnrs, kb: bytes / 1024 };
}

/** The encoder quality at which `curve` (ascending quality) reaches `psnr`: linear between its points, clamped to its ends. */
function qualityFor(curve: Point[], psnr: number): number {
  const above = curve.findIndex((p) => p.psnr >= psnr);
  if (above <= 0) return above === 0 ? (curve[0] as Point).quality : (curve.at(-1) as Point).quality;
  const [low, high] = [curve[above - 1] as Point, curve[above] as Point];
  return low.quality + ((psnr - low.psnr) / (high.psnr - low.psnr)) * (high.quality - low.quality);
}

const images = await servedOutputs(args["models-dir"], [2, 4]);
console.error(`quality-scale: ${images.length} images, JPEG and WebP at ${API_QUALITIES.length} qualities, AVIF at 25`);
const jpeg: Point[] = [];
const webp: Point[] = [];
for (const q of API_QUALITIES) {
  jpeg.push(await measure(images, "jpeg", q));
  webp.push(await measure(images, "webp", q));
}
const avif: Point[] = [];
// Each quality near the top, where AVIF turns lossless-like: 98 gives 56.5 dB, 100 60.1.
for (const q of [1, ...range(5, 95, 5), 96, 97, 98, 99, 100]) avif.push(await measure(images, "avif", q));
const served: Point[] = [];
for (const q of API_QUALITIES) served.push(await measure(images, "avif", avifQuality(q)));

console.log(`The served model's x2 and x4 of the demo's photos (${images.map((i) => `${i.width}x${i.height}`).join(", ")}); PSNR-Y of the decoded file against the image encoded, the mean, and the mean size per image`);
console.log("");
console.log("| quality | JPEG (dB, KB) | WebP (dB, KB) | AVIF at the same number (dB, KB) | AVIF at JPEG's fidelity: quality | AVIF as served: quality, dB, KB | served AVIF against JPEG: dB (each image's, least to most), size |");
console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
API_QUALITIES.forEach((q, i) => {
  const [j, w, s] = [jpeg[i] as Point, webp[i] as Point, served[i] as Point];
  const gaps = s.psnrs.map((p, k) => p - (j.psnrs[k] as number));
  const signed = (d: number) => (d >= 0 ? "+" : "") + d.toFixed(2);
  const same = avif.find((p) => p.quality === q);
  const cell = (p: Point | undefined) => (p ? `${p.psnr.toFixed(2)}, ${p.kb.toFixed(0)}` : "");
  console.log(
    `| ${q} | ${cell(j)} | ${cell(w)} | ${cell(same)} | ${qualityFor(avif, j.psnr).toFixed(1)} | ${s.quality}, ${cell(s)} | ${signed(s.psnr - j.psnr)} (${signed(Math.min(...gaps))} to ${signed(Math.max(...gaps))}), ${(s.kb / j.kb).toFixed(2)}x |`,
  );
});
console.log("");
console.log(`AVIF qualities at JPEG's fidelity, for AVIF_QUALITY: [${API_QUALITIES.map((q, i) => `[${q}, ${Math.round(qualityFor(avif, (jpeg[i] as Point).psnr))}]`).join(", ")}]`);
console.log(`AVIF_QUALITY now: [${AVIF_QUALITY.map(([q, a]) => `[${q}, ${a}]`).join(", ")}]`);

/** A crop of the x4 of the demo's cat (fur and an eye) as each format encodes it at the default quality, enlarged 3x, labelled. */
async function figure(image: Raw, path: string): Promise<void> {
  const crop = { left: 800, top: 330, width: 160, height: 128 };
  const zoom = 3;
  const raw = { raw: { width: image.width, height: image.height, channels: 3 as const } };
  const ways: [label: string, format: OutputFormat, quality: number][] = [
    ["the image encoded (lossless)", "png", 100],
    [`JPEG ${DEFAULT_QUALITY}`, "jpeg", DEFAULT_QUALITY],
    [`AVIF ${DEFAULT_QUALITY} (until now)`, "avif", DEFAULT_QUALITY],
    [`AVIF ${avifQuality(DEFAULT_QUALITY)} (served for ${DEFAULT_QUALITY})`, "avif", avifQuality(DEFAULT_QUALITY)],
    [`WebP ${DEFAULT_QUALITY}`, "webp", DEFAULT_QUALITY],
  ];
  const [width, height, gap, caption] = [crop.width * zoom, crop.height * zoom, 8, 28];
  const tiles = await Promise.all(
    ways.map(async ([label, format, quality], i) => {
      const file = await sharp(image.rgb, raw).toFormat(format, { ...ENCODERS[format].options, ...(format === "png" ? {} : { quality }) }).toBuffer();
      const pixels = await sharp(file).extract(crop).resize(width, height, { kernel: "nearest" }).png().toBuffer();
      const text = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${caption}"><text x="4" y="20" font-family="sans-serif" font-size="16">${label}, ${Math.round(file.length / 1024)} KB</text></svg>`;
      const left = i * (width + gap);
      return [
        { input: pixels, left, top: 0 },
        { input: Buffer.from(text), left, top: height },
      ];
    }),
  );
  await sharp({ create: { width: ways.length * (width + gap) - gap, height: height + caption, channels: 3, background: "#ffffff" } })
    .composite(tiles.flat())
    .png({ compressionLevel: 9 })
    .toFile(path);
  console.log(`\nThe picture: ${path} (the demo's cat, x4, a ${crop.width}x${crop.height} crop enlarged ${zoom}x; sizes are the whole 1920x1080 image's)`);
}

await figure(images.find((i) => i.name.startsWith("chelsea") && i.width === 1920) as Raw, args.figure);
