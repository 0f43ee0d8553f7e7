import type { Scale } from "@hvar/contract";
import type { TilePlan } from "./plan";
import { reflectIndex, tileOrigin } from "./plan";
import { imageThreads, sharedRgb, type ImageThreads } from "./image-threads";
import { sumChunks, type SumChunks } from "./sum-chunks";

/**
 * Per-axis weight of a tile at output scale `scale`: 1 in its interior, a sin² ramp over the overlap
 * on each side that has a neighbour. Neighbouring ramps are complementary (sin² + cos² = 1) at the
 * regular stride, so the blend is a partition of unity and a flat image stays exactly flat; the ramp
 * also discounts the tile's own border, where the model saw the least context.
 */
export function axisWeights(tileOut: number, rampOut: number, rampBefore: boolean, rampAfter: boolean): Float32Array {
  const weights = new Float32Array(tileOut).fill(1);
  for (let j = 0; j < rampOut; j++) {
    const w = Math.sin((Math.PI / 2) * ((j + 0.5) / rampOut)) ** 2;
    if (rampBefore) weights[j] = (weights[j] as number) * w;
    if (rampAfter) weights[tileOut - 1 - j] = (weights[tileOut - 1 - j] as number) * w;
  }
  return weights;
}

/** Whether every pixel of an interleaved 8-bit RGB image has equal channels (a greyscale picture). */
export function isGrey(rgb: Uint8Array): boolean {
  for (let i = 0; i < rgb.length; i += 3) if (rgb[i] !== rgb[i + 1] || rgb[i] !== rgb[i + 2]) return false;
  return true;
}

/** Copies LR tile `index` of an interleaved 8-bit RGB image into `dst` as planar float in [0, 1]. */
export function fillTile(rgb: Uint8Array, plan: TilePlan, index: number, dst: Float32Array, offset: number): void {
  const { width, height, tileWidth, tileHeight } = plan;
  const { x, y } = tileOrigin(plan, index);
  const plane = tileWidth * tileHeight;
  for (let ty = 0; ty < tileHeight; ty++) {
    const row = reflectIndex(y + ty, height) * width;
    for (let tx = 0; tx < tileWidth; tx++) {
      const src = (row + reflectIndex(x + tx, width)) * 3;
      const d = offset + ty * tileWidth + tx;
      dst[d] = (rgb[src] as number) / 255;
      dst[d + plane] = (rgb[src + 1] as number) / 255;
      dst[d + 2 * plane] = (rgb[src + 2] as number) / 255;
    }
  }
}

/**
 * Accumulates weighted tile outputs at one scale and turns them into an 8-bit image at the end. The
 * sum is planar `[3, H, W]`, stored a band of rows per chunk of `SumChunks`, each chunk taken when a
 * tile first reaches its rows and given back once the image is made.
 */
export class Blender {
  readonly width: number;
  readonly height: number;
  private readonly chunks: (Float32Array | undefined)[];
  private readonly rowsPerChunk: number;
  private released = false;
  private readonly columnWeight: Float32Array;
  private readonly rowWeight: Float32Array;
  private readonly weightsX: Float32Array[];
  private readonly weightsY: Float32Array[];

  constructor(
    private readonly plan: TilePlan,
    readonly scale: Scale,
    private readonly memory: SumChunks = sumChunks,
    private readonly threads: ImageThreads = imageThreads,
  ) {
    this.width = plan.width * scale;
    this.height = plan.height * scale;
    this.rowsPerChunk = Math.max(1, Math.floor(memory.chunkLength / this.width));
    this.chunks = new Array<Float32Array | undefined>(Math.ceil((3 * this.height) / this.rowsPerChunk)).fill(undefined);
    const rampOut = plan.overlap * scale;
    this.weightsX = plan.xs.map((_, i) => axisWeights(plan.tileWidth * scale, rampOut, i > 0, i < plan.xs.length - 1));
    this.weightsY = plan.ys.map((_, i) => axisWeights(plan.tileHeight * scale, rampOut, i > 0, i < plan.ys.length - 1));
    this.columnWeight = axisSum(plan.xs, this.weightsX, scale, this.width);
    this.rowWeight = axisSum(plan.ys, this.weightsY, scale, this.height);
  }

  /** Adds tile `index`'s output, `data[offset ..]` planar `[3, sH, sW]`, cropped to the image. */
  add(index: number, data: Float32Array, offset: number): void {
    const { column, row, x, y } = tileOrigin(this.plan, index);
    const outWidth = this.plan.tileWidth * this.scale;
    const outHeight = this.plan.tileHeight * this.scale;
    const wx = this.weightsX[column] as Float32Array;
    const wy = this.weightsY[row] as Float32Array;
    const x0 = x * this.scale;
    const y0 = y * this.scale;
    // Tiles start before the image (its mirrored margin) and may end after it: only the part on it counts.
    const left = Math.max(0, -x0);
    const top = Math.max(0, -y0);
    const right = Math.min(outWidth, this.width - x0);
    const bottom = Math.min(outHeight, this.height - y0);
    for (let c = 0; c < 3; c++) {
      for (let ty = top; ty < bottom; ty++) {
        const weightY = wy[ty] as number;
        const src = offset + c * outWidth * outHeight + ty * outWidth;
        const [sum, start] = this.row(c * this.height + y0 + ty);
        const dst = start + x0;
        for (let tx = left; tx < right; tx++) sum[dst + tx] = (sum[dst + tx] as number) + (data[src + tx] as number) * (wx[tx] as number) * weightY;
      }
    }
  }

  /**
   * The blended image, interleaved 8-bit RGB, in `rgb` (shared memory of its size, every byte written:
   * rgb-buffers.ts keeps it for the next image); call once, after every tile was added: the sum's memory
   * goes back to `SumChunks`. `grey`: every pixel is the mean of its channels (to-rgb.ts). A large
   * image is made on `ImageThreads`, not on the calling thread.
   */
  async toRgb(grey = false, rgb = sharedRgb(this.width, this.height)): Promise<Buffer> {
    if (rgb.length !== this.width * this.height * 3) throw new Error(`an 8-bit image of ${this.width}x${this.height} needs ${this.width * this.height * 3} bytes, not ${rgb.length}`);
    const chunks = this.chunks.map((_, index) => this.chunk(index));
    try {
      await this.threads.rgb({ chunks, rowsPerChunk: this.rowsPerChunk, width: this.width, height: this.height, rowWeight: this.rowWeight, columnWeight: this.columnWeight }, grey, rgb);
    } finally {
      this.memory.give(chunks);
      this.chunks.fill(undefined);
      this.released = true;
    }
    return rgb;
  }

  /** Row `r` of the planar sum (plane c's row y is c * height + y): its chunk, and where it starts in it. */
  private row(r: number): [Float32Array, number] {
    const index = Math.floor(r / this.rowsPerChunk);
    return [this.chunk(index), (r - index * this.rowsPerChunk) * this.width];
  }

  /** Chunk `index`, taken when a tile first reaches its rows. */
  private chunk(index: number): Float32Array {
    if (this.released) throw new Error("this blend's image was already made: its sum is gone");
    const rows = Math.min(this.rowsPerChunk, 3 * this.height - index * this.rowsPerChunk);
    return (this.chunks[index] ??= this.memory.take(rows * this.width));
  }
}

function axisSum(starts: number[], weights: Float32Array[], scale: number, length: number): Float32Array {
  const sum = new Float32Array(length);
  starts.forEach((start, i) => {
    const w = weights[i] as Float32Array;
    for (let j = Math.max(0, -start * scale); j < w.length && start * scale + j < length; j++) sum[start * scale + j] = (sum[start * scale + j] as number) + (w[j] as number);
  });
  return sum;
}
