import type { Scale } from "@hvar/contract";

/** One batch of model outputs, planar NCHW float32 in [0, 1] (contract v1): one tensor per scale. */
export interface ModelOutputs {
  /** `[N, 3, T, T]` */
  x1: Float32Array;
  /** `[N, 3, 2T, 2T]` */
  x2: Float32Array;
  /** `[N, 3, 4T, 4T]` */
  x4: Float32Array;
}

export function outputFor(outputs: ModelOutputs, scale: Scale): Float32Array {
  return outputs[`x${scale}`];
}

/**
 * What the tiling and the scheduler need from a model: its tile side and one call per batch.
 * The ONNX session implements it; tests also use plain per-tile functions.
 */
export interface TileModel {
  readonly tile: number;
  /** L, the number of noise values per tile. */
  readonly tokens: number;
  /** `lr` is `[n, 3, T, T]`; `noise` is `[n, L]`. */
  run(lr: Float32Array, noise: Float32Array, n: number, temperature: number): Promise<ModelOutputs>;
}
