import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { discoverModels, type ModelEntry } from "../../gpu-runner/src/model/manifest";
import { ModelSession } from "../../gpu-runner/src/model/session";
import { silentLog } from "./helpers";

/**
 * The shipped model, run by the runner's own runtime (onnxruntime-node), gives the answers PyTorch
 * gave for the same inputs when it was exported (`parity.safetensors`, written by `hvar.export`):
 * greedy decoding gives images above 50 dB PSNR for tiles whose tokens are all equal (and at least
 * one such tile). In both cases a token may differ only where PyTorch's own draw was within rounding of
 * a tie (the parity file's tie distances), counted in each tile's first scale with a difference, since
 * later scales follow another prefix (TIE and unexplained_flips in model/hvar/export.py). A model that
 * generates nothing (tokens 0: the restoration stage alone) has no draws: its images must match.
 */
const MODELS_DIR = fileURLToPath(new URL("../../gpu-runner/models", import.meta.url));
const CASES = { greedy: { temperature: 0 }, sampled: { temperature: 1 } } as const;
const TIE = 1e-4;

interface Tensor {
  shape: number[];
  data: Float32Array | Int32Array;
}

/** IEEE half to float (Node 20 has no Float16Array): the restoration stage's answers are stored in F16. */
function halfToFloat(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i] as number;
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    if (exponent === 0) out[i] = sign * 2 ** -14 * (fraction / 1024);
    else if (exponent === 0x1f) out[i] = fraction ? NaN : sign * Infinity;
    else out[i] = sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
  }
  return out;
}

/** safetensors: u64 header length, a JSON header of {dtype, shape, data_offsets}, then raw data. */
function parseSafetensors(bytes: Buffer): Record<string, Tensor> {
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out: Record<string, Tensor> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [begin, end] = info.data_offsets;
    const raw = bytes.subarray(8 + headerLength + begin, 8 + headerLength + end);
    const copy = new Uint8Array(raw).buffer; // aligned
    if (info.dtype === "F32") out[name] = { shape: info.shape, data: new Float32Array(copy) };
    else if (info.dtype === "F16") out[name] = { shape: info.shape, data: halfToFloat(new Uint16Array(copy)) };
    else if (info.dtype === "I32") out[name] = { shape: info.shape, data: new Int32Array(copy) };
    else throw new Error(`unexpected dtype ${info.dtype} for ${name}`);
  }
  return out;
}

function get(parity: Record<string, Tensor>, name: string): Tensor {
  const t = parity[name];
  if (t === undefined) throw new Error(`parity file lacks ${name}`);
  return t;
}

/** Tokens chosen differently from PyTorch away from a near-tie, in each tile's first scale with a difference. */
function unexplainedFlips(got: BigInt64Array, want: Int32Array | Float32Array, tie: Int32Array | Float32Array, spans: Int32Array | Float32Array, n: number, L: number): number {
  let count = 0;
  for (let b = 0; b < n; b++) {
    for (let s = 0; s < spans.length; s += 2) {
      let differs = false;
      for (let i = b * L + (spans[s] as number); i < b * L + (spans[s + 1] as number); i++) {
        if (Number(got[i]) === want[i]) continue;
        differs = true;
        if ((tie[i] as number) >= TIE) count++;
      }
      if (differs) break;
    }
  }
  return count;
}

function psnr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let se = 0;
  for (let i = 0; i < a.length; i++) se += ((a[i] as number) - (b[i] as number)) ** 2;
  return se === 0 ? Infinity : 10 * Math.log10(a.length / se);
}

const { models, rejected } = await discoverModels(MODELS_DIR);

// Creating a session for the unrolled graph (~9k nodes) takes seconds to a minute on a busy 2-core host.
describe("the shipped model", { timeout: 300_000 }, () => {
  it("is present, and its manifest and sha256 are accepted by the runner", () => {
    expect(rejected).toEqual([]);
    expect(models.length).toBeGreaterThan(0);
  });

  // Models that generate detail draw tokens: another runtime must draw PyTorch's (up to near-ties).
  describe.each(models.filter((m) => m.manifest.tokens > 0).map((m) => [m.manifest.id, m] as const))("%s", (_id, entry: ModelEntry) => {
    const parityPath = join(entry.onnxPath, "..", "parity.safetensors");

    it.each(Object.entries(CASES))("matches PyTorch with onnxruntime-node (%s decoding)", async (caseName, { temperature }) => {
      const parity = parseSafetensors(await readFile(parityPath));
      const lr = get(parity, "lr");
      const noise = get(parity, "noise");
      const session = await ort.InferenceSession.create(entry.onnxPath, { executionProviders: ["cpu"], intraOpNumThreads: 2 });
      const result = await session
        .run({
          lr: new ort.Tensor("float32", lr.data, lr.shape),
          noise: new ort.Tensor("float32", noise.data, noise.shape),
          temperature: new ort.Tensor("float32", Float32Array.of(temperature), [1]),
        })
        .finally(() => session.release());
      const tokens = result.tokens?.data as BigInt64Array;
      const want = get(parity, `${caseName}.tokens`).data;
      const [n, L] = noise.shape as [number, number];
      const sameTile: boolean[] = [];
      for (let b = 0; b < n; b++) {
        let all = true;
        for (let i = b * L; i < (b + 1) * L; i++) if (Number(tokens[i]) !== want[i]) all = false;
        sameTile.push(all);
      }
      expect(unexplainedFlips(tokens, want, get(parity, `${caseName}.tie`).data, get(parity, "spans").data, n, L)).toBe(0);
      if (caseName !== "greedy") return;
      expect(sameTile.some(Boolean)).toBe(true);
      for (const scale of ["x1", "x2", "x4"] as const) {
        const got = result[scale]?.data as Float32Array;
        const ref = get(parity, `${caseName}.${scale}`).data;
        const per = got.length / n;
        for (let b = 0; b < n; b++) {
          if (!sameTile[b]) continue;
          expect(psnr(got.subarray(b * per, (b + 1) * per), ref.subarray(b * per, (b + 1) * per))).toBeGreaterThan(50);
        }
      }
    });
  });

  describe.each(models.map((m) => [m.manifest.id, m] as const))("%s", (_id, entry: ModelEntry) => {
    const parityPath = join(entry.onnxPath, "..", "parity.safetensors");

    it("gives PyTorch's greedy images through the runner's ModelSession", async () => {
      const parity = parseSafetensors(await readFile(parityPath));
      const lr = get(parity, "lr");
      // A model that generates nothing (tokens 0) takes no noise, and its parity file has none.
      const noise = entry.manifest.tokens > 0 ? get(parity, "noise") : { shape: [0], data: new Float32Array(0) };
      // [n, 3, H, W]: the tile side, or for a graph with a tile step any shape it takes
      const [n, , height, width] = lr.shape as [number, number, number, number];
      const session = await ModelSession.load(entry, { device: "cpu", cudaDeviceId: 0, cpuThreads: 2 }, silentLog);
      const out = await session.run(lr.data as Float32Array, noise.data as Float32Array, n, { temperature: 0, cleanup: 1 }, { height, width });
      for (const scale of ["x1", "x2", "x4"] as const) {
        expect(psnr(out[scale], get(parity, `greedy.${scale}`).data)).toBeGreaterThan(50);
      }
      await session.release();
    });
  });
});
