import { readdirSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_QUALITY, type Scale } from "@hvar/contract";
import { pino } from "pino";
import sharp from "sharp";
import { decodeImage } from "../../gpu-runner/src/image/decode";
import { discoverModels, tileOverlap } from "../../gpu-runner/src/model/manifest";
import { ModelSession } from "../../gpu-runner/src/model/session";
import { Scheduler } from "../../gpu-runner/src/scheduler/scheduler";
import { UpscaleTask } from "../../gpu-runner/src/tiling/task";

/**
 * Deterministic synthetic photos for benchmarking: shapes, thin lines, text and gradients drawn
 * with SVG (librsvg in sharp). Not real photographs, and not the research-only benchmark images,
 * which never leave ../shared/datasets: good for throughput, indicative only for quality.
 */
export async function syntheticImage(width: number, height: number, seed: number): Promise<Buffer> {
  let state = seed * 2654435761;
  const rand = () => ((state = (state * 1103515245 + 12345) >>> 0) % 10_000) / 10_000;
  const colour = () => `rgb(${Math.floor(rand() * 255)},${Math.floor(rand() * 255)},${Math.floor(rand() * 255)})`;
  const shapes: string[] = [];
  for (let i = 0; i < 40; i++) {
    const x = rand() * width;
    const y = rand() * height;
    const r = 4 + rand() * Math.min(width, height) * 0.15;
    shapes.push(i % 3 === 0 ? `<circle cx="${x}" cy="${y}" r="${r}" fill="${colour()}" fill-opacity="0.8"/>` : i % 3 === 1 ? `<rect x="${x}" y="${y}" width="${r * 1.6}" height="${r}" fill="${colour()}" transform="rotate(${rand() * 90} ${x} ${y})"/>` : `<line x1="${x}" y1="${y}" x2="${rand() * width}" y2="${rand() * height}" stroke="${colour()}" stroke-width="${1 + rand() * 3}"/>`);
  }
  for (let i = 0; i < 6; i++) shapes.push(`<text x="${rand() * width * 0.7}" y="${20 + rand() * (height - 20)}" font-family="sans-serif" font-size="${10 + rand() * 28}" fill="${colour()}">hvar ${seed}-${i} Quick brown fox</text>`);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
  <defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="${colour()}"/><stop offset="1" stop-color="${colour()}"/></linearGradient></defs>
  <rect width="100%" height="100%" fill="url(#g)"/>${shapes.join("")}</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

export interface Raw {
  name: string;
  width: number;
  height: number;
  /** Interleaved 8-bit RGB. */
  rgb: Buffer;
}

const EXAMPLES = "worker/public/demo/examples";

/**
 * What the runner encodes: the outputs at `scales` of each demo photo (CC0), cut to 480x270, by the
 * served model through the runner's tiling, by scale, then photo.
 */
export async function servedOutputs(modelsDir: string, scales: Scale[] = [4]): Promise<Raw[]> {
  const served = (await discoverModels(modelsDir)).models[0];
  if (!served) throw new Error(`no usable model in ${modelsDir}`);
  const session = await ModelSession.load(served, { device: "cpu", cudaDeviceId: 0, cpuThreads: 0 }, pino({ level: "warn" }));
  const scheduler = new Scheduler(session, { batchSize: 8, memoryBudgetBytes: 4 * 1024 ** 3, maxQueuedTiles: Number.MAX_SAFE_INTEGER });
  const outputs: Raw[] = [];
  for (const file of readdirSync(EXAMPLES).filter((f) => f.endsWith(".jpg")).sort()) {
    const lr = await sharp(join(EXAMPLES, file)).resize(480, 270, { fit: "cover" }).png().toBuffer();
    const image = await decodeImage(lr, { maxPixels: 480 * 270 });
    const task = await UpscaleTask.create(image, { scales, tile: served.manifest.tile, tileStep: served.manifest.tileStep, overlap: tileOverlap(served.manifest, undefined), temperature: 0 });
    await scheduler.submit(task);
    for (const output of await task.encode("png", DEFAULT_QUALITY)) {
      const { data, info } = await sharp(output.bytes).raw().toBuffer({ resolveWithObject: true });
      outputs.push({ name: `${file} x${output.scale}`, width: info.width, height: info.height, rgb: data });
    }
  }
  await session.release();
  return outputs.sort((a, b) => a.width - b.width);
}
