import type { Scale } from "@hvar/contract";

/** One batch of model outputs, planar NCHW float32 in [0, 1] (contract v1): one tensor per scale. */
export interface ModelOutputs {
  /** `[N, 3, H, W]` (T x T unless the tiles were fitted) */
  x1: Float32Array;
  /** `[N, 3, 2H, 2W]` */
  x2: Float32Array;
  /** `[N, 3, 4H, 4W]` */
  x4: Float32Array;
}

export function outputFor(outputs: ModelOutputs, scale: Scale): Float32Array {
  return outputs[`x${scale}`];
}

/** The LR sides of the tiles of one batch. */
export interface TileShape {
  height: number;
  width: number;
}

/**
 * What the tiles of one batch share besides their shape: the sampling temperature of generated detail
 * and the clean-up strength (how much of the restorer's correction x1 keeps, 1 all of it). A model
 * uses what it takes (manifest `tokens`, `cleanup`) and ignores the rest.
 */
export interface RunSettings {
  temperature: number;
  cleanup: number;
}

/**
 * What the tiling and the scheduler need from a model: its tile side and one call per batch.
 * The ONNX session implements it; tests also use plain per-tile functions.
 */
export interface TileModel {
  /** The tile side, or for a model with a tile step (manifest `tileStep`), the largest. */
  readonly tile: number;
  /** L, the number of noise values per tile. */
  readonly tokens: number;
  /** `lr` is `[n, 3, H, W]` (`shape`; absent: T x T); `noise` is `[n, L]`; outputs are `[n, 3, sH, sW]`. */
  run(lr: Float32Array, noise: Float32Array, n: number, settings: RunSettings, shape?: TileShape): Promise<ModelOutputs>;
}
