/**
 * What the API's `quality` gives in each lossy format, on what the runner encodes (the served model's x2
 * and x4 of the demo photos, images.ts): the fidelity (PSNR-Y of the decoded file against the image encoded,
 * quality.ts) and size at every quality, JPEG (mozjpeg, the served encoder) beside WebP and AVIF; and for
 * each quality, the AVIF quality whose fidelity is JPEG's (interpolated on AVIF's curve), the table the
 * runner encodes AVIF by (gpu-runner/src/image/encode.ts, AVIF_QUALITY), then that table checked image
 * by image: the spread of the served AVIF's fidelity against the JPEG's.
 *
 *   npm run bench:quality-scale
 */
import { parseArgs } from "node:util";
import type { OutputFormat } from "@hvar/contract";
import sharp from "sharp";
import { z } from "zod";
import { AVIF_QUALITY, ENCODERS, avifQuality } from "../../gpu-runner/src/image/encode";
import { type Raw, servedOutputs } from "./images";
import { psnrY } from "./quality";

const ArgsSchema = z.object({ "models-dir": z.string().default("gpu-runner/models") });
const args = ArgsSchema.parse(parseArgs({ options: { "models-dir": { type: "string" } } }).values);

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
