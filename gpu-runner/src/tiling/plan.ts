/**
 * Where the LR tiles of an image go. Tiles lie on a grid (`xs` by `ys`), so the blend weight of each
 * tile is a product of one weight per axis, and so is their sum: the blender keeps one weight sum
 * per row and per column instead of a full plane per scale. All tiles of one image have one shape:
 * T x T, or, for a model whose graph takes any multiple of its tile step (manifest `tileStep`), the
 * fewest tiles of at most T along each axis, each as short as covers it (`fitSide`).
 */
export interface TilePlan {
  width: number;
  height: number;
  tileWidth: number;
  tileHeight: number;
  overlap: number;
  /** Left edges of the tile columns, ascending, from `-overlap` (see `axisStarts`). */
  xs: number[];
  /** Top edges of the tile rows. */
  ys: number[];
  count: number;
}

export function planTiles(width: number, height: number, tile: number, overlap: number, step?: number): TilePlan {
  if (!Number.isInteger(overlap) || overlap < 0 || overlap * 2 > tile) {
    throw new RangeError(`overlap must be an integer in [0, tile/2], got ${overlap} for tile ${tile}`);
  }
  const tileWidth = step === undefined ? tile : fitSide(width, tile, overlap, step);
  const tileHeight = step === undefined ? tile : fitSide(height, tile, overlap, step);
  const xs = axisStarts(width, tileWidth, overlap);
  const ys = axisStarts(height, tileHeight, overlap);
  return { width, height, tileWidth, tileHeight, overlap, xs, ys, count: xs.length * ys.length };
}

/**
 * The tile side along an axis of `length` pixels for a graph that takes sides that are multiples of
 * `step` up to `tile`: the fewest tiles that cover the mirrored axis, each as short as they can be. A
 * T x T tile costs all of it wherever the image ends, so a 480-px axis took 4 tiles of 192 (768 px of
 * work) where 2 of 288 (576) cover it. Never below twice the overlap.
 */
export function fitSide(length: number, tile: number, overlap: number, step: number): number {
  if (!Number.isInteger(step) || step < 1 || tile % step !== 0) throw new RangeError(`the tile side ${tile} must be a multiple of the step ${step}`);
  const padded = length + 2 * overlap;
  const count = padded <= tile ? 1 : Math.ceil((padded - overlap) / (tile - overlap));
  const side = Math.max(Math.ceil((padded - overlap) / count) + overlap, 2 * overlap);
  return Math.min(tile, Math.ceil(side / step) * step);
}

/** Tile `index` in row-major order. */
export function tileOrigin(plan: TilePlan, index: number): { column: number; row: number; x: number; y: number } {
  const column = index % plan.xs.length;
  const row = Math.floor(index / plan.xs.length);
  return { column, row, x: plan.xs[column] as number, y: plan.ys[row] as number };
}

/**
 * Tile starts along one axis. The image is first mirrored by `overlap` pixels on both sides (the tiles
 * read those pixels through `reflectIndex`), so its own edges lie as deep inside a tile as a seam
 * between two tiles does: a network that pads each tile with zeros then never tints or darkens the
 * image's border. The first start is therefore `-overlap`.
 */
function axisStarts(length: number, tile: number, overlap: number): number[] {
  const padded = length + 2 * overlap;
  const starts: number[] = [];
  for (let start = 0; start + tile < padded; start += tile - overlap) starts.push(start);
  // The last tile is aligned to the far edge rather than padded further: real pixels beat reflected ones.
  // A side shorter than a tile gets one tile, filled out by reflection.
  starts.push(Math.max(0, padded - tile));
  return starts.map((start) => start - overlap);
}

/** Index into [0, n) mirrored about the edges without repeating them (numpy's `reflect`), for any i. */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const m = ((i % period) + period) % period;
  return m < n ? m : period - m;
}
