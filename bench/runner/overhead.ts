/**
 * The runner's own work for one job, without the model: reading the noise (`cleanup=auto`), cutting the
 * tiles, blending each tile's outputs into the image, and making the 8-bit image that is encoded (the
 * encoding itself runs on libuv's threads and is timed apart). This is what a GPU runner
 * cannot go faster than, however fast its model: the model's outputs here are a constant stand-in of
 * the served model's tile shape, since what blending costs does not depend on their values. The noise
 * read and the 8-bit images are on the runner's image threads (tiling/image-threads.ts), not on its
 * thread. Each job runs three times per round: with its blend sums and 8-bit images in the memory the
 * job before left ("kept"), in fresh memory ("fresh"), and with kept sums but its noise read and 8-bit
 * images on the runner's thread, in fresh memory, as until 2026-12-05.
 *
 *   npm run bench:runner-overhead                      # 1920x1080 at x4, the served model's tiling
 *   npm run bench:runner-overhead -- --size 960x540 --scales 1,2,4 --rounds 5
 */
import { parseArgs } from "node:util";
import { scaleListSchema } from "@hvar/contract";
import { z } from "zod";
import { decodeImage } from "../../gpu-runner/src/image/decode";
import { encodeImage } from "../../gpu-runner/src/image/encode";
import { discoverModels, tileOverlap } from "../../gpu-runner/src/model/manifest";
import { Blender, fillTile } from "../../gpu-runner/src/tiling/blend";
import { ImageThreads, imageThreads } from "../../gpu-runner/src/tiling/image-threads";
import { rgbBuffers } from "../../gpu-runner/src/tiling/rgb-buffers";
import { sumChunks } from "../../gpu-runner/src/tiling/sum-chunks";
import { planTiles } from "../../gpu-runner/src/tiling/plan";
import { syntheticImage } from "./images";

const ArgsSchema = z.object({
  "models-dir": z.string().default("gpu-runner/models"),
  size: z
    .string()
    .regex(/^[1-9]\d*x[1-9]\d*$/, "size is <width>x<height> in pixels, e.g. 1920x1080")
    .default("1920x1080")
    .transform((s) => s.split("x").map(Number) as [number, number]),
  scales: scaleListSchema,
  rounds: z.coerce.number().int().min(1).default(3),
});
const text = { type: "string" } as const;
const args = ArgsSchema.parse(parseArgs({ options: { "models-dir": text, size: text, scales: { type: "string", default: "4" }, rounds: text } }).values);
const [width, height] = args.size;
const served = (await discoverModels(args["models-dir"])).models[0];
if (!served) throw new Error(`no usable model in ${args["models-dir"]}`);
const { tile, tileStep } = served.manifest;
const image = await decodeImage(await syntheticImage(width, height, 1), { maxPixels: width * height });
const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
const timed = <T>(work: () => T): [T, number] => {
  const started = performance.now();
  const result = work();
  return [result, performance.now() - started];
};

interface Round {
  noise: number;
  fill: number;
  blend: number;
  toRgb: number;
  encode: number;
}
type Memory = "warm" | "cold" | "inline";
const plan = planTiles(width, height, tile, tileOverlap(served.manifest, undefined), tileStep);
const pixels = plan.tileWidth * plan.tileHeight;
const lr = new Float32Array(3 * pixels);
// A constant stand-in for one tile's outputs, x1, x2 and x4 planar: blending does not read their values.
const outputs = { 1: new Float32Array(3 * pixels).fill(0.5), 2: new Float32Array(12 * pixels).fill(0.5), 4: new Float32Array(48 * pixels).fill(0.5) };

/**
 * One job's work. "warm": its blend sums in the chunks the job before left (sum-chunks.ts) and its
 * 8-bit images in its buffers (rgb-buffers.ts), as on a runner with work; "cold": in fresh memory, as
 * the first job after a start or 30 s idle. Only the warm job is encoded: encoding does not read the sums.
 */
const onThisThread = new ImageThreads(0);
async function job(memory: Memory): Promise<Round> {
  if (memory === "cold") {
    sumChunks.trim();
    rgbBuffers.trim();
  }
  const threads = memory === "inline" ? onThisThread : imageThreads;
  const reading = performance.now();
  await threads.noiseLevel(image.rgb, width, height);
  const timing: Round = { noise: performance.now() - reading, fill: 0, blend: 0, toRgb: 0, encode: 0 };
  const blenders = args.scales.map((scale) => (memory === "inline" ? new Blender(plan, scale, sumChunks, onThisThread) : new Blender(plan, scale)));
  for (let index = 0; index < plan.count; index++) {
    timing.fill += timed(() => fillTile(image.rgb, plan, index, lr, 0))[1];
    for (const blender of blenders) timing.blend += timed(() => blender.add(index, outputs[blender.scale], 0))[1];
  }
  for (const blender of blenders) {
    let started = performance.now();
    const rgb = await blender.toRgb(false, memory === "inline" ? undefined : rgbBuffers.take(blender.width * blender.height * 3));
    timing.toRgb += performance.now() - started;
    started = performance.now();
    if (memory === "warm") await encodeImage({ width: blender.width, height: blender.height, rgb }, "webp", 90);
    timing.encode += performance.now() - started;
    if (memory !== "inline") rgbBuffers.give(rgb);
  }
  return timing;
}

const rounds: Record<Memory, Round[]> = { warm: [], cold: [], inline: [] };
for (let round = 0; round <= args.rounds; round++) {
  // Each round runs all three, in turn first; round 0 is a warm-up.
  for (const memory of round % 2 === 0 ? (["warm", "cold", "inline"] as const) : (["inline", "cold", "warm"] as const)) {
    const timing = await job(memory);
    if (round > 0) rounds[memory].push(timing);
  }
}
const outputMp = (args.scales.reduce((sum, s) => sum + s * s, 0) * width * height) / 1e6;
const ms = (key: keyof Round, memory: Memory = "warm") => median(rounds[memory].map((x) => x[key]));
const thread = (memory: Memory) => ms("fill", memory) + ms("blend", memory) + (memory === "inline" ? ms("noise", memory) + ms("toRgb", memory) : 0);
const imageThreadsMs = ms("noise") + ms("toRgb");
const row = (part: string, key: keyof Round, perTile = false) => `| ${part} | yes | ${ms(key).toFixed(0)} | ${ms(key, "cold").toFixed(0)} | ${perTile ? (ms(key) / plan.count).toFixed(1) : ""} |`;
const ceiling = (ms: number) => (outputMp / (ms / 1000)).toFixed(1);
console.log(`${width}x${height} at x${args.scales.join(", x")} (${outputMp.toFixed(1)} output MP), ${plan.count} tiles of ${plan.tileWidth}x${plan.tileHeight} (${served.manifest.id} ${served.manifest.version}'s tiling), the median of ${args.rounds} rounds`);
console.log("");
console.log("| part | on the runner's thread | ms per job, sums in kept chunks | in fresh memory | ms per tile, kept chunks |");
console.log("| --- | --- | ---: | ---: | ---: |");
console.log(`| noise read (cleanup=auto) | no: ${imageThreads.count} image thread(s) | ${ms("noise").toFixed(0)} | ${ms("noise", "cold").toFixed(0)} | |`);
console.log(row("cutting the tiles", "fill", true));
console.log(row("blending the outputs", "blend", true));
console.log(`| 8-bit images from the blend | no: ${imageThreads.count} image thread(s) | ${ms("toRgb").toFixed(0)} | ${ms("toRgb", "cold").toFixed(0)} | |`);
console.log(`| the noise read and 8-bit images on the runner's thread (until 2026-12-05) | yes | ${ms("noise", "inline").toFixed(0)} + ${ms("toRgb", "inline").toFixed(0)} | | |`);
console.log(`| WebP encoding (sharp) | no: libuv's threads | ${ms("encode").toFixed(0)} | | |`);
console.log("");
console.log(`On the runner's thread: ${thread("warm").toFixed(0)} ms per job with the sums in kept chunks, ${thread("cold").toFixed(0)} in fresh memory, ${thread("inline").toFixed(0)} with the noise read and 8-bit images on it:`);
console.log(`a ceiling of ${ceiling(thread("warm"))}, ${ceiling(thread("cold"))} and ${ceiling(thread("inline"))} output MP/s whatever the model's speed; the image threads' ${ceiling(imageThreadsMs)} (${imageThreadsMs.toFixed(0)} ms per job).`);
