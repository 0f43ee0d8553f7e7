/**
 * Where the LR tiles of an image go. Tiles lie on a grid (`xs` by `ys`), so the blend weight of each
 * tile is a product of one weight per axis, and so is their sum: the blender keeps one weight sum
 * per row and per column instead of a full plane per scale.
 */
export interface TilePlan {
  width: number;
  height: number;
  tile: number;
  overlap: number;
  /** Left edges of the tile columns, ascending; the last tile ends at the image edge when it can. */
  xs: number[];
  /** Top edges of the tile rows. */
  ys: number[];
  count: number;
}

export function planTiles(width: number, height: number, tile: number, overlap: number): TilePlan {
  if (!Number.isInteger(overlap) || overlap < 0 || overlap * 2 > tile) {
    throw new RangeError(`overlap must be an integer in [0, tile/2], got ${overlap} for tile ${tile}`);
  }
  const xs = axisStarts(width, tile, overlap);
  const ys = axisStarts(height, tile, overlap);
  return { width, height, tile, overlap, xs, ys, count: xs.length * ys.length };
}

/** Tile `index` in row-major order. */
export function tileOrigin(plan: TilePlan, index: number): { column: number; row: number; x: number; y: number } {
  const column = index % plan.xs.length;
  const row = Math.floor(index / plan.xs.length);
  return { column, row, x: plan.xs[column] as number, y: plan.ys[row] as number };
}

function axisStarts(length: number, tile: number, overlap: number): number[] {
  // A side shorter than a tile gets one tile, filled out by reflection.
  if (length <= tile) return [0];
  const stride = tile - overlap;
  const starts: number[] = [];
  for (let start = 0; start + tile < length; start += stride) starts.push(start);
  // The last tile is aligned to the far edge rather than padded: real pixels beat reflected ones.
  starts.push(length - tile);
  return starts;
}

/** Index into [0, n) mirrored about the edges without repeating them (numpy's `reflect`), for any i. */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const m = ((i % period) + period) % period;
  return m < n ? m : period - m;
}
