import { CONTENT_TYPES, type OutputFormat, type Scale } from "@hvar/contract";
import { upscaleAlpha } from "../image/alpha";
import type { DecodedImage } from "../image/decode";
import { encodeImage } from "../image/encode";
import { outputFor, type ModelOutputs } from "../model/types";
import type { TileJob } from "../scheduler/scheduler";
import { Blender, fillTile, isGrey } from "./blend";
import { planTiles, type TilePlan } from "./plan";

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
  tile: number;
  /** LR pixels shared by neighbouring tiles; the design's default is T/4. */
  overlap: number;
  temperature: number;
  onProgress?: (tilesDone: number, tilesTotal: number) => void;
}

/**
 * One image on its way through the model: hands its tiles to the scheduler, blends what comes back
 * at each requested scale, then encodes (with the alpha plane upscaled on the side).
 */
export class UpscaleTask implements TileJob {
  readonly plan: TilePlan;
  readonly temperature: number;
  /** Greyscale in, greyscale out. */
  readonly grey: boolean;
  private readonly blenders: Blender[];
  private done = 0;

  constructor(
    private readonly image: DecodedImage,
    private readonly options: UpscaleOptions,
  ) {
    this.plan = planTiles(image.width, image.height, options.tile, options.overlap);
    this.temperature = options.temperature;
    this.grey = isGrey(image.rgb);
    this.blenders = [...new Set(options.scales)].sort((a, b) => a - b).map((scale) => new Blender(this.plan, scale));
  }

  get tiles(): number {
    return this.plan.count;
  }

  get tilesDone(): number {
    return this.done;
  }

  fill(index: number, dst: Float32Array, offset: number): void {
    fillTile(this.image.rgb, this.plan, index, dst, offset);
  }

  accept(index: number, outputs: ModelOutputs, slot: number): void {
    for (const blender of this.blenders) {
      const side = this.plan.tile * blender.scale;
      blender.add(index, outputFor(outputs, blender.scale), slot * 3 * side * side);
    }
    this.done++;
    this.options.onProgress?.(this.done, this.plan.count);
  }

  /** The blended images, encoded; call once every tile was accepted. */
  async encode(format: OutputFormat, quality: number): Promise<EncodedOutput[]> {
    const { width, height, alpha } = this.image;
    return Promise.all(
      this.blenders.map(async (blender) => ({
        scale: blender.scale,
        width: blender.width,
        height: blender.height,
        contentType: CONTENT_TYPES[format],
        format,
        bytes: await encodeImage(
          { width: blender.width, height: blender.height, rgb: blender.toRgb(this.grey), ...(alpha ? { alpha: await upscaleAlpha(alpha, width, height, blender.scale) } : {}) },
          format,
          quality,
        ),
      })),
    );
  }
}
