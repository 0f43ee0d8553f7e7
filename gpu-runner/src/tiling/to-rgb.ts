/**
 * A blend sum as blend.ts keeps it: planar `[3, H, W]`, `rowsPerChunk` rows in each chunk (row r of
 * the planar sum, plane c's row y being c * H + y, is in chunk floor(r / rowsPerChunk)), and the tiles'
 * weights summed per output row and per column (they are separable).
 */
export interface SumRows {
  chunks: Float32Array[];
  rowsPerChunk: number;
  width: number;
  height: number;
  rowWeight: Float32Array;
  columnWeight: Float32Array;
}

/**
 * Rows [y0, y1) of the blended image as interleaved 8-bit RGB in `rgb` (the whole image's). `grey`:
 * every pixel is the mean of its channels, since a network that mixes channels can tint a greyscale
 * input by a few levels. Runs on the runner's thread for small images and on image-thread.ts for others.
 */
export function sumToRgb(sum: SumRows, grey: boolean, rgb: Uint8Array, y0: number, y1: number): void {
  const { width, height, columnWeight } = sum;
  // Clamped stores clip to [0, 255] and round (half to even): the 8-bit conversion in one step.
  const bytes = new Uint8ClampedArray(rgb.buffer, rgb.byteOffset, rgb.length);
  for (let y = y0; y < y1; y++) {
    const perRowWeight = (grey ? 255 / 3 : 255) / (sum.rowWeight[y] as number);
    const [r, rStart] = rowOf(sum, y);
    const [g, gStart] = rowOf(sum, height + y);
    const [b, bStart] = rowOf(sum, 2 * height + y);
    for (let x = 0; x < width; x++) {
      const k = perRowWeight / (columnWeight[x] as number);
      const p = (y * width + x) * 3;
      if (grey) {
        bytes[p] = ((r[rStart + x] as number) + (g[gStart + x] as number) + (b[bStart + x] as number)) * k;
        bytes[p + 1] = bytes[p + 2] = bytes[p] as number;
      } else {
        bytes[p] = (r[rStart + x] as number) * k;
        bytes[p + 1] = (g[gStart + x] as number) * k;
        bytes[p + 2] = (b[bStart + x] as number) * k;
      }
    }
  }
}

/** Row `r` of the planar sum: its chunk, and where the row starts in it. */
function rowOf(sum: Pick<SumRows, "chunks" | "rowsPerChunk" | "width">, r: number): [Float32Array, number] {
  const index = Math.floor(r / sum.rowsPerChunk);
  return [sum.chunks[index] as Float32Array, (r - index * sum.rowsPerChunk) * sum.width];
}
