import { AUTO_CLEANUP, CONTENT_TYPES, type Cleanup, type OutputFormat, type Scale } from "@hvar/contract";
import { upscaleAlpha } from "../image/alpha";
import type { DecodedImage } from "../image/decode";
import { encodeImage } from "../image/encode";
import { cleanupFor } from "../image/noise";
import { outputFor, type ModelOutputs, type RunSettings, type TileShape } from "../model/types";
import type { TileJob } from "../scheduler/scheduler";
import { Blender, fillTile, isGrey } from "./blend";
import { imageThreads, type ImageThreads } from "./image-threads";
import { planTiles, type TilePlan } from "./plan";
import { rgbBuffers } from "./rgb-buffers";

export interface EncodedOutput {
  scale: Scale;
  width: number;
  height: number;
  contentType: string;
  /** The file extension is the format's name (`.jpeg`, not `.jpg`), as the worker's result paths expect. */
  format: OutputFormat;
  bytes: Buffer;
}

export interface UpscaleOptions {
  scales: Scale[];
  /** The model's tile side; with `tileStep`, the largest, and tiles are fitted to the image (plan.ts). */
  tile: number;
  tileStep?: number;
  /** LR pixels shared by neighbouring tiles; the design's default is T/4. */
  overlap: number;
  temperature: number;
  /** The clean-up strength (manifest `cleanup`); `auto` or absent: the image's own (image/noise.ts), what a job gets by default. */
  cleanup?: Cleanup;
  onProgress?: (tilesDone: number, tilesTotal: number) => void;
}

/**
 * Bytes one job holds at its peak, for a `width`x`height` input at `scales`: the decoded image (8-bit
 * RGB and alpha), every scale's blend sum (3 float32 per output pixel), and, while the largest scale is
 * encoded, its 8-bit RGB, its upscaled alpha and the encoder's buffers (counted at 2.5 times the raw
 * size: PNG of noise, the worst case, took 1.9 times). The scales are encoded one after another,
 * largest first, so the peak is the moment the largest is encoded. A sum's memory goes back to
 * `SumChunks` once its image is made, for the next job rather than to the system, so every sum counts
 * until the job ends. bench/runner/job-memory.ts measures the peak against this estimate.
 */
export function taskMemoryBytes(width: number, height: number, scales: readonly Scale[], alpha: boolean): number {
  const pixels = width * height;
  const unique = [...new Set(scales)];
  const largest = Math.max(...unique) ** 2 * pixels;
  const sums = unique.reduce((total, s) => total + 12 * s * s * pixels, 0);
  const channels = alpha ? 4 : 3;
  return pixels * channels + sums + largest * (channels + 2.5 * channels);
}

/**
 * One image on its way through the model: hands its tiles to the scheduler, blends what comes back
 * at each requested scale, then encodes (with the alpha plane upscaled on the side).
 */
export class UpscaleTask implements TileJob {
  readonly plan: TilePlan;
  /** Greyscale in, greyscale out. */
  readonly grey: boolean;
  /** Emptied by encode(), so that each scale's sum can be collected as soon as it is encoded. */
  private readonly blenders: Blender[];
  private done = 0;

  /** An image's task: reading its noise first, on the image threads, when its clean-up is `auto` (the default; image/noise.ts). */
  static async create(image: DecodedImage, options: UpscaleOptions, threads: ImageThreads = imageThreads): Promise<UpscaleTask> {
    const asked = options.cleanup ?? AUTO_CLEANUP;
    const cleanup = asked === AUTO_CLEANUP ? cleanupFor(await threads.noiseLevel(image.rgb, image.width, image.height), image.jpegQuality) : asked;
    return new UpscaleTask(image, options, { temperature: options.temperature, cleanup });
  }

  private constructor(
    private readonly image: DecodedImage,
    private readonly options: UpscaleOptions,
    readonly settings: RunSettings,
  ) {
    this.plan = planTiles(image.width, image.height, options.tile, options.overlap, options.tileStep);
    this.grey = isGrey(image.rgb);
    this.blenders = [...new Set(options.scales)].sort((a, b) => a - b).map((scale) => new Blender(this.plan, scale));
  }

  get tiles(): number {
    return this.plan.count;
  }

  get shape(): TileShape {
    return { height: this.plan.tileHeight, width: this.plan.tileWidth };
  }

  get tilesDone(): number {
    return this.done;
  }

  fill(index: number, dst: Float32Array, offset: number): void {
    fillTile(this.image.rgb, this.plan, index, dst, offset);
  }

  accept(index: number, outputs: ModelOutputs, slot: number): void {
    const pixels = this.plan.tileWidth * this.plan.tileHeight;
    for (const blender of this.blenders) blender.add(index, outputFor(outputs, blender.scale), slot * 3 * pixels * blender.scale ** 2);
    this.done++;
    this.options.onProgress?.(this.done, this.plan.count);
  }

  /**
   * The blended images, encoded, by ascending scale; call once, after every tile was accepted. Scales
   * are encoded one at a time, largest first, and each 8-bit image is let go once it is encoded: the
   * job's peak is then its sums plus one scale's image and encoder (taskMemoryBytes), not every
   * scale's at once.
   */
  async encode(format: OutputFormat, quality: number): Promise<EncodedOutput[]> {
    const { width, height, alpha } = this.image;
    const largestFirst = this.blenders.splice(0).reverse();
    const encoded: EncodedOutput[] = [];
    for (const blender of largestFirst) {
      const { scale, width: outWidth, height: outHeight } = blender;
      const rgb = await blender.toRgb(this.grey, rgbBuffers.take(outWidth * outHeight * 3));
      let bytes: Buffer;
      try {
        bytes = await encodeImage({ width: outWidth, height: outHeight, rgb, ...(alpha ? { alpha: await upscaleAlpha(alpha, width, height, scale) } : {}) }, format, quality);
      } finally {
        rgbBuffers.give(rgb); // encoded (or failed): sharp no longer reads it
      }
      encoded.unshift({ scale, width: outWidth, height: outHeight, contentType: CONTENT_TYPES[format], format, bytes });
    }
    return encoded;
  }
}
