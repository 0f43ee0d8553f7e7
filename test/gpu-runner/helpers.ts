import { mkdtemp } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import sharp from "sharp";
import { inject } from "vitest";
import type { ModelOutputs, RunSettings, TileModel } from "../../gpu-runner/src/model/types";

/** The contract-conformant fixture model (see fixtures/make_contract_model.py), not a product model. */
export const FIXTURE_MODELS_DIR = fileURLToPath(new URL("./fixtures", import.meta.url));

export const silentLog = pino({ level: "silent" });

/** A new empty folder for a test, in the project's temp root, which is removed after the run (temp-root.ts). */
export const tempDir = (prefix: string): Promise<string> => mkdtemp(join(inject("tempRoot"), prefix));

/** An image whose pixels are a function of position, encoded by sharp with the given pipeline. */
export function pattern(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): Buffer {
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) rgb.set(pixel(x, y), (y * width + x) * 3);
  }
  return rgb;
}

export function rawImage(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]) {
  return sharp(pattern(width, height, pixel), { raw: { width, height, channels: 3 } });
}

export async function decodeRaw(bytes: Buffer) {
  return sharp(bytes).raw().toBuffer({ resolveWithObject: true });
}

/**
 * A pure per-pixel "model": x1 is the tile itself, x2 and x4 repeat each pixel (nearest neighbour), for
 * tiles of any shape. Tiling it must give exactly the same image as applying it to the whole picture at once.
 */
export function nearestModel(tile: number, onRun?: (n: number, settings: RunSettings) => Promise<void> | void): TileModel & { runs: number[] } {
  const runs: number[] = [];
  return {
    tile,
    tokens: 4,
    runs,
    async run(lr, _noise, n, settings, shape = { height: tile, width: tile }): Promise<ModelOutputs> {
      runs.push(n);
      await onRun?.(n, settings);
      const { height, width } = shape;
      const up = (s: number) => {
        const out = new Float32Array(n * 3 * height * width * s * s);
        for (let p = 0; p < n * 3; p++) {
          for (let y = 0; y < height * s; y++) {
            for (let x = 0; x < width * s; x++) out[(p * height * s + y) * width * s + x] = lr[(p * height + Math.floor(y / s)) * width + Math.floor(x / s)] as number;
          }
        }
        return out;
      };
      return { x1: up(1), x2: up(2), x4: up(4) };
    },
  };
}
