import { setImmediate } from "node:timers/promises";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Blender } from "../../gpu-runner/src/tiling/blend";
import { planTiles, tileOrigin, type TilePlan } from "../../gpu-runner/src/tiling/plan";
import { ImageThreads } from "../../gpu-runner/src/tiling/image-threads";
import { RgbBuffers } from "../../gpu-runner/src/tiling/rgb-buffers";
import { SumChunks } from "../../gpu-runner/src/tiling/sum-chunks";

/** The level of output pixel (x, y) in channel c: what every tile that covers the pixel gives. */
const level = (x: number, y: number, c: number) => (x * 7 + y * 3 + c * 50) % 256;

/** Tile `index`'s output at `scale`, planar [3, sH, sW], as a model that draws `level` would give it. */
function tileOutput(plan: TilePlan, index: number, scale: number): Float32Array {
  const { x, y } = tileOrigin(plan, index);
  const w = plan.tileWidth * scale;
  const h = plan.tileHeight * scale;
  const out = new Float32Array(3 * w * h);
  for (let c = 0; c < 3; c++) for (let ty = 0; ty < h; ty++) for (let tx = 0; tx < w; tx++) out[(c * h + ty) * w + tx] = level(x * scale + tx, y * scale + ty, c) / 255;
  return out;
}

function blend(plan: TilePlan, scale: 1 | 2 | 4, memory: SumChunks): Blender {
  const blender = new Blender(plan, scale, memory);
  for (let index = 0; index < plan.count; index++) blender.add(index, tileOutput(plan, index, scale), 0);
  return blender;
}

function expectLevels(rgb: Buffer, width: number, height: number): void {
  const wrong: string[] = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) if (rgb[(y * width + x) * 3 + c] !== level(x, y, c) && wrong.length < 5) wrong.push(`(${x}, ${y}, ${c})`);
    }
  }
  expect(wrong).toEqual([]);
}

afterEach(() => {
  vi.useRealTimers();
});

describe("blend sums in chunks", () => {
  const plan = planTiles(70, 45, 32, 8);

  it("gives every pixel its level when a chunk holds a few rows, so that rows of one tile span many chunks", async () => {
    const blender = blend(plan, 2, new SumChunks(140 * 3 + 5));
    expectLevels(await blender.toRgb(), 140, 90);
  });

  it("gives every pixel its level when a row is longer than a chunk", async () => {
    const blender = blend(plan, 4, new SumChunks(100));
    expectLevels(await blender.toRgb(), 280, 180);
  });

  it("leaves nothing of one image in the next, made in the same memory", async () => {
    const memory = new SumChunks(64 * 10);
    const bright = new Blender(planTiles(64, 40, 32, 8), 1, memory);
    const white = new Float32Array(3 * 32 * 32).fill(1);
    for (let index = 0; index < 6; index++) bright.add(index, white, 0);
    await bright.toRgb();
    const chunks = memory.freeBytes;
    expect(chunks).toBeGreaterThan(0);
    const next = blend(plan, 1, memory);
    expect(memory.freeBytes).toBeLessThan(chunks);
    expectLevels(await next.toRgb(), 70, 45);
  });

  it("makes no new chunk while given-back ones are free", async () => {
    const memory = new SumChunks(1000);
    await blend(plan, 2, memory).toRgb();
    const free = memory.freeBytes;
    await blend(plan, 2, memory).toRgb();
    expect(memory.freeBytes).toBe(free);
  });

  it("gives a chunk only to what fills more than half of one, and keeps no other memory given back", () => {
    const memory = new SumChunks(100);
    const [long, small, most] = [memory.take(500), memory.take(40), memory.take(80)];
    expect([long.length, small.length, most.length]).toEqual([500, 40, 100]);
    memory.give([long, small, most]);
    expect(memory.freeBytes).toBe(400);
  });

  it("lets free chunks go down to a number of bytes", () => {
    const memory = new SumChunks(100);
    memory.give([100, 100, 100].map((length) => memory.take(length)));
    memory.keepAtMost(850);
    expect(memory.freeBytes).toBe(800);
    memory.keepAtMost(-1);
    expect(memory.freeBytes).toBe(0);
  });

  it("lets the free chunks go after a while without a job giving any back", () => {
    vi.useFakeTimers();
    const memory = new SumChunks(100, 1000);
    memory.give([memory.take(100), memory.take(100)]);
    vi.advanceTimersByTime(999);
    memory.give([memory.take(100)]);
    vi.advanceTimersByTime(999);
    expect(memory.freeBytes).toBe(800);
    vi.advanceTimersByTime(1);
    expect(memory.freeBytes).toBe(0);
  });

  it("refuses a tile after the image was made, since its memory went to another job", async () => {
    const blender = blend(plan, 1, new SumChunks());
    await blender.toRgb();
    expect(() => blender.add(0, tileOutput(plan, 0, 1), 0)).toThrow(/already made/);
  });
});

describe("8-bit images in kept buffers", () => {
  const plan = planTiles(70, 45, 32, 8);

  it("hands a given-back buffer to the next image it can hold, the smallest that can", () => {
    const images = new RgbBuffers();
    const [larger, smaller] = [images.take(120), images.take(110)];
    images.give(larger);
    images.give(smaller);
    const next = images.take(100);
    expect([next.length, next.buffer]).toEqual([100, smaller.buffer]);
    expect(images.freeBytes).toBe(120);
  });

  it("makes a new buffer when no free one can hold the image", () => {
    const images = new RgbBuffers();
    const small = images.take(120);
    images.give(small);
    expect(images.take(121).buffer).not.toBe(small.buffer);
    expect(images.freeBytes).toBe(120);
  });

  it("makes a new buffer rather than hand out one over a quarter larger than the image, whose rest no job would count", () => {
    const images = new RgbBuffers();
    const large = images.take(300);
    images.give(large);
    expect(images.take(200).buffer).not.toBe(large.buffer);
    expect(images.take(240).buffer).toBe(large.buffer);
  });

  it("leaves nothing of one image in the next, made in the same buffer", async () => {
    const images = new RgbBuffers();
    const brightPlan = planTiles(75, 48, 32, 8);
    const bright = new Blender(brightPlan, 1, new SumChunks());
    const white = new Float32Array(3 * 32 * 32).fill(1);
    for (let index = 0; index < brightPlan.count; index++) bright.add(index, white, 0);
    const used = await bright.toRgb(false, images.take(75 * 48 * 3));
    images.give(used);
    const rgb = await blend(plan, 1, new SumChunks()).toRgb(false, images.take(70 * 45 * 3));
    expect(rgb.buffer).toBe(used.buffer);
    expectLevels(rgb, 70, 45);
  });

  it("lets free buffers go down to a number of bytes, the largest first", () => {
    const images = new RgbBuffers();
    for (const buffer of [100, 300, 200].map((bytes) => images.take(bytes))) images.give(buffer);
    images.keepAtMost(350);
    expect(images.freeBytes).toBe(300);
    images.keepAtMost(-1);
    expect(images.freeBytes).toBe(0);
  });

  it("lets the free buffers go after a while without a job giving any back", () => {
    vi.useFakeTimers();
    const images = new RgbBuffers(1000);
    images.give(images.take(100));
    vi.advanceTimersByTime(999);
    images.give(images.take(200));
    vi.advanceTimersByTime(999);
    expect(images.freeBytes).toBe(300);
    vi.advanceTimersByTime(1);
    expect(images.freeBytes).toBe(0);
  });
});

describe("making the 8-bit image", () => {
  it("leaves the calling thread free to turn while a large image is made", async () => {
    const large = planTiles(1024, 1100, 384, 32, 16);
    const blender = new Blender(large, 1, new SumChunks());
    const flat = new Float32Array(3 * large.tileWidth * large.tileHeight).fill(0.5);
    for (let index = 0; index < large.count; index++) blender.add(index, flat, 0);
    const order: string[] = [];
    void setImmediate().then(() => order.push("another turn"));
    await blender.toRgb().then(() => order.push("image made"));
    expect(order).toEqual(["another turn", "image made"]);
  });

  it("gives every pixel of a large image its level, made in bands on the image threads", async () => {
    const threads = new ImageThreads(3);
    const large = planTiles(1100, 1000, 256, 32);
    const blender = new Blender(large, 1, new SumChunks(1100 * 7), threads);
    for (let index = 0; index < large.count; index++) blender.add(index, tileOutput(large, index, 1), 0);
    expectLevels(await blender.toRgb(), 1100, 1000);
    await threads.close();
  });

  it("fails an image whose thread ends before it is made, and makes the next on a new thread", async () => {
    const threads = new ImageThreads(1);
    const large = planTiles(1100, 1000, 256, 32);
    const flat = new Float32Array(3 * 256 * 256).fill(0.6);
    const image = () => {
      const blender = new Blender(large, 1, new SumChunks(), threads);
      for (let index = 0; index < large.count; index++) blender.add(index, flat, 0);
      return blender.toRgb();
    };
    const lost = image();
    await threads.close();
    await expect(lost).rejects.toThrow(/exited/);
    expect(new Set(await image())).toEqual(new Set([153]));
    await threads.close();
  });

  it("makes every image on the calling thread with no image threads", async () => {
    const order: string[] = [];
    void setImmediate().then(() => order.push("another turn"));
    const large = planTiles(1100, 1000, 256, 32);
    const blender = new Blender(large, 1, new SumChunks(), new ImageThreads(0));
    for (let index = 0; index < large.count; index++) blender.add(index, tileOutput(large, index, 1), 0);
    await blender.toRgb().then(() => order.push("image made"));
    expect(order).toEqual(["image made"]);
  });

  it("makes a small image in one turn", async () => {
    const order: string[] = [];
    void setImmediate().then(() => order.push("another turn"));
    await blend(planTiles(70, 45, 32, 8), 1, new SumChunks())
      .toRgb()
      .then(() => order.push("image made"));
    expect(order).toEqual(["image made"]);
  });

  it("gives a greyscale image the mean of the channels in each", async () => {
    const plan = planTiles(40, 30, 32, 8);
    const blender = new Blender(plan, 1, new SumChunks());
    const tinted = new Float32Array(3 * 32 * 32);
    tinted.fill(100 / 255, 0, 1024).fill(103 / 255, 1024, 2048).fill(106 / 255, 2048);
    for (let index = 0; index < plan.count; index++) blender.add(index, tinted, 0);
    expect(new Set(await blender.toRgb(true))).toEqual(new Set([103]));
  });
});
