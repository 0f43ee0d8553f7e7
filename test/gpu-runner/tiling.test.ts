import { readFileSync } from "node:fs";
import sharp, { type OutputInfo } from "sharp";
import { describe, expect, it } from "vitest";
import { axisWeights } from "../../gpu-runner/src/tiling/blend";
import { fitSide, planTiles, reflectIndex } from "../../gpu-runner/src/tiling/plan";
import { UpscaleTask } from "../../gpu-runner/src/tiling/task";
import { discoverModels, type ModelEntry } from "../../gpu-runner/src/model/manifest";
import { ModelSession } from "../../gpu-runner/src/model/session";
import type { Scale } from "@hvar/contract";
import type { TileModel } from "../../gpu-runner/src/model/types";
import { Scheduler } from "../../gpu-runner/src/scheduler/scheduler";
import type { DecodedImage } from "../../gpu-runner/src/image/decode";
import { FIXTURE_MODELS_DIR, nearestModel, pattern, silentLog } from "./helpers";

const roomy = { batchSize: 8, memoryBudgetBytes: 1 << 30, maxQueuedTiles: 10_000 };

function image(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): DecodedImage {
  return { width, height, rgb: pattern(width, height, pixel), format: "png" };
}

/** Runs an image through the tiling with `model`; returns the raw RGB of each requested scale. */
async function upscale(model: TileModel, input: DecodedImage, scales: Scale[], overlap = model.tile / 4, tileStep?: number) {
  const task = await UpscaleTask.create(input, { scales, tile: model.tile, tileStep, overlap, temperature: 0 });
  await new Scheduler(model, roomy).submit(task);
  const outputs = await task.encode("png", 90);
  return Promise.all(outputs.map(async (o) => ({ scale: o.scale, ...(await sharp(o.bytes).raw().toBuffer({ resolveWithObject: true })) })));
}

let fixture: Promise<ModelSession> | undefined;
function fixtureModel(): Promise<ModelSession> {
  fixture ??= discoverModels(FIXTURE_MODELS_DIR).then(({ models }) => ModelSession.load(models[0] as ModelEntry, { device: "cpu", cudaDeviceId: 0, cpuThreads: 1 }, silentLog));
  return fixture;
}

const gradient = (x: number, y: number): [number, number, number] => [(x * 2) % 256, (y * 3) % 256, (x + y) % 256];

describe("tile plan", () => {
  it("covers the image mirrored by the overlap with tiles that overlap by that amount", () => {
    const plan = planTiles(100, 40, 32, 8);
    expect(plan.xs).toEqual([-8, 16, 40, 64, 76]);
    expect(plan.ys).toEqual([-8, 16]);
    expect(plan.count).toBe(10);
  });

  it("uses a single tile for an image that fits in a tile with its mirrored margin", () => {
    expect(planTiles(16, 16, 32, 8)).toMatchObject({ xs: [-8], ys: [-8], count: 1 });
    expect(planTiles(32, 32, 32, 0)).toMatchObject({ xs: [0], ys: [0], count: 1 });
  });

  it("fits the tiles to the image for a model with a tile step: the fewest per axis, each as short as covers it", () => {
    // 480x270 mirrored by 32 px is 544x334: two 288x336 tiles, where 192-px tiles took 8
    expect(planTiles(480, 270, 384, 32, 16)).toMatchObject({ tileWidth: 288, tileHeight: 336, xs: [-32, 224], ys: [-32], count: 2 });
    expect(planTiles(480, 270, 192, 32)).toMatchObject({ tileWidth: 192, tileHeight: 192, count: 8 });
  });

  it("never fits a side below twice the overlap or off the step", () => {
    expect(fitSide(3, 384, 32, 16)).toBe(80);
    expect(() => fitSide(100, 100, 8, 16)).toThrow(RangeError);
  });

  it("refuses an overlap larger than half a tile", () => {
    expect(() => planTiles(100, 100, 32, 17)).toThrow(RangeError);
  });

  it("reflects indices past either edge without repeating the edge pixel", () => {
    expect([-2, -1, 0, 4, 5, 6, 12].map((i) => reflectIndex(i, 5))).toEqual([2, 1, 0, 4, 3, 2, 4]);
    expect(reflectIndex(7, 1)).toBe(0);
  });

  it("starts and blend weights are the golden file's, as the Python evaluation's are (one specification)", () => {
    const golden = JSON.parse(readFileSync(new URL("../fixtures/tiling-golden.json", import.meta.url), "utf8")) as {
      cases: { length: number; tile: number; overlap: number; scale: number; starts: number[]; weights: number[][] }[];
    };
    for (const c of golden.cases) {
      const plan = planTiles(c.length, 1, c.tile, c.overlap);
      expect(plan.xs).toEqual(c.starts);
      plan.xs.forEach((_, i) => {
        const weights = axisWeights(c.tile * c.scale, c.overlap * c.scale, i > 0, i < plan.xs.length - 1);
        expect(Array.from(weights).map((w) => Math.round(w * 1e7) / 1e7)).toEqual(c.weights[i]);
      });
    }
  });

  it("fitted sides and their starts are the golden file's, as the Python evaluation's are", () => {
    const golden = JSON.parse(readFileSync(new URL("../fixtures/tiling-golden.json", import.meta.url), "utf8")) as {
      fitted: { length: number; tile: number; overlap: number; step: number; side: number; starts: number[] }[];
    };
    for (const c of golden.fitted) {
      const plan = planTiles(c.length, 1, c.tile, c.overlap, c.step);
      expect([plan.tileWidth, plan.xs]).toEqual([c.side, c.starts]);
    }
  });

  it("blend ramps of neighbouring tiles add up to one across the overlap", () => {
    const left = axisWeights(64, 16, false, true);
    const right = axisWeights(64, 16, true, false);
    for (let j = 0; j < 16; j++) expect((left[48 + j] as number) + (right[j] as number)).toBeCloseTo(1, 6);
  });
});

describe("tiled upscaling", () => {
  it("equals the untiled result for a pure per-pixel model at every scale, with several tiles", async () => {
    const input = image(75, 50, gradient);
    const outputs = await upscale(nearestModel(16), input, [1, 2, 4]);
    for (const { scale, data, info } of outputs) {
      expect([info.width, info.height]).toEqual([75 * scale, 50 * scale]);
      for (let y = 0; y < info.height; y += 7) {
        for (let x = 0; x < info.width; x += 3) {
          const want = gradient(Math.floor(x / scale), Math.floor(y / scale));
          expect([...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)]).toEqual(want);
        }
      }
    }
  });

  it("equals the untiled result through fitted oblong tiles too", async () => {
    const input = image(150, 70, gradient);
    const outputs = await upscale(nearestModel(64), input, [1, 4], 8, 16);
    for (const { scale, data, info } of outputs) {
      for (let y = 0; y < info.height; y += 5) {
        for (let x = 0; x < info.width; x += 3) {
          const want = gradient(Math.floor(x / scale), Math.floor(y / scale));
          expect([...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)]).toEqual(want);
        }
      }
    }
  });

  it("keeps a flat image exactly flat (no seam) with the fixture model", async () => {
    const outputs = await upscale(await fixtureModel(), image(90, 70, () => [120, 60, 200]), [1, 2, 4]);
    for (const { data } of outputs) {
      const values = new Set<string>();
      for (let p = 0; p < data.length; p += 3) values.add(`${data[p]},${data[p + 1]},${data[p + 2]}`);
      expect([...values]).toEqual(["120,60,200"]);
    }
  });

  it("shows no seam on a smooth gradient with the fixture model (second differences stay at rounding level)", async () => {
    const smooth = (x: number, y: number): [number, number, number] => [Math.round(x * 2.5), Math.round(y * 2), 128];
    const [x2] = await upscale(await fixtureModel(), image(96, 80, smooth), [2]);
    const { data, info } = x2 as { data: Buffer; info: OutputInfo };
    let worst = 0;
    for (let y = 2; y < info.height - 2; y++) {
      for (let x = 2; x < info.width - 2; x++) {
        const at = (xx: number, yy: number, c: number) => data[(yy * info.width + xx) * 3 + c] as number;
        worst = Math.max(worst, Math.abs(at(x - 1, y, 0) - 2 * at(x, y, 0) + at(x + 1, y, 0)), Math.abs(at(x, y - 1, 1) - 2 * at(x, y, 1) + at(x, y + 1, 1)));
      }
    }
    expect(worst).toBeLessThanOrEqual(2);
  });

  it("equals the model's own output where one tile covers the image without overlap", async () => {
    const model = await fixtureModel();
    const t = model.tile;
    const input = image(t, t, gradient);
    const lr = new Float32Array(3 * t * t);
    for (let p = 0; p < t * t; p++) for (let c = 0; c < 3; c++) lr[c * t * t + p] = (input.rgb[p * 3 + c] as number) / 255;
    const direct = await model.run(lr, new Float32Array(model.tokens), 1, { temperature: 0, cleanup: 1 });
    const [x2] = await upscale(model, input, [2], 0);
    const { data } = x2 as { data: Buffer };
    const side = 2 * t;
    let worst = 0;
    for (let p = 0; p < side * side; p++) {
      for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs((data[p * 3 + c] as number) - (direct.x2[c * side * side + p] as number) * 255));
    }
    expect(worst).toBeLessThanOrEqual(0.5);
  });

  it("fills an image smaller than a tile by reflection and crops it back", async () => {
    const [x4] = await upscale(nearestModel(32), image(10, 7, gradient), [4]);
    expect([x4?.info.width, x4?.info.height]).toEqual([40, 28]);
    expect([...(x4?.data.subarray((27 * 40 + 39) * 3, (27 * 40 + 39) * 3 + 3) ?? [])]).toEqual(gradient(9, 6));
  });

  it("gives a greyscale image grey outputs even from a model that tints it, and leaves colour alone", async () => {
    const base = nearestModel(16);
    const tinting: TileModel = { ...base, run: async (lr, noise, n, t) => {
      const out = await base.run(lr, noise, n, t);
      for (const x of [out.x1, out.x2, out.x4]) for (let i = 0; i < x.length / n / 3; i++) x[i] = (x[i] as number) + 0.02; // red of tile 0
      return out;
    } };
    const [grey] = await upscale(tinting, image(20, 12, (x) => [x * 9, x * 9, x * 9]), [2]);
    const g = grey as { data: Buffer };
    for (let p = 0; p < g.data.length; p += 3) expect(new Set([g.data[p], g.data[p + 1], g.data[p + 2]]).size).toBe(1);
    const [colour] = await upscale(tinting, image(20, 12, (x) => [x * 9, x * 9, x * 9 + 1]), [2]);
    const c = colour as { data: Buffer };
    expect(c.data[0]).toBeGreaterThan(c.data[1] as number); // the tint stays where the input has colour
  });

  it("upscales alpha separately and re-attaches it", async () => {
    const alpha = Buffer.from(Array.from({ length: 20 * 10 }, (_, i) => ((i % 20) < 10 ? 0 : 255)));
    const task = await UpscaleTask.create({ ...image(20, 10, () => [50, 100, 150]), alpha }, { scales: [2], tile: 16, overlap: 4, temperature: 0 });
    await new Scheduler(nearestModel(16), roomy).submit(task);
    const [png] = await task.encode("png", 90);
    const { data, info } = await sharp(png?.bytes).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([40, 20, 4]);
    expect(data[(10 * 40 + 2) * 4 + 3]).toBe(0);
    expect(data[(10 * 40 + 37) * 4 + 3]).toBe(255);
    expect([...data.subarray((10 * 40 + 37) * 4, (10 * 40 + 37) * 4 + 3)]).toEqual([50, 100, 150]);
  });
});
