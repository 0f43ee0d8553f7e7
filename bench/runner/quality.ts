import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";

type Channel = (p: Uint8Array, i: number) => number;
// BT.601 YCbCr of 8-bit RGB at pixel offset i, on the studio range (MATLAB's rgb2ycbcr).
const Y: Channel = (p, i) => 16 + (65.481 * (p[i] as number) + 128.553 * (p[i + 1] as number) + 24.966 * (p[i + 2] as number)) / 255;
const CB: Channel = (p, i) => 128 + (-37.797 * (p[i] as number) - 74.203 * (p[i + 1] as number) + 112.0 * (p[i + 2] as number)) / 255;
const CR: Channel = (p, i) => 128 + (112.0 * (p[i] as number) - 93.786 * (p[i + 1] as number) - 18.214 * (p[i + 2] as number)) / 255;

/**
 * PSNR on the Y channel of BT.601 YCbCr with `shave` border pixels left out, as the evaluation
 * protocol measures (model/hvar/eval.py; docs/evaluation.md), for interleaved 8-bit RGB.
 */
export function psnrY(a: Uint8Array, b: Uint8Array, width: number, height: number, shave: number): number {
  return psnrOn([Y], a, b, width, height, shave);
}

/** The same on the two chroma channels together (Cb and Cr): what chroma subsampling costs, which Y does not see. */
export function psnrCbCr(a: Uint8Array, b: Uint8Array, width: number, height: number, shave: number): number {
  return psnrOn([CB, CR], a, b, width, height, shave);
}

function psnrOn(channels: Channel[], a: Uint8Array, b: Uint8Array, width: number, height: number, shave: number): number {
  if (a.length !== b.length || a.length !== width * height * 3) throw new Error("images differ in size");
  let sum = 0;
  let count = 0;
  for (let row = shave; row < height - shave; row++) {
    for (let col = shave; col < width - shave; col++) {
      const i = (row * width + col) * 3;
      for (const channel of channels) {
        const d = channel(a, i) - channel(b, i);
        sum += d * d;
        count++;
      }
    }
  }
  const mse = sum / count;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

export interface Pair {
  name: string;
  /** Interleaved RGB, `width` x `height`. */
  lr: Buffer;
  /** Interleaved RGB, 4 `width` x 4 `height`. */
  hr: Buffer;
  width: number;
  height: number;
}

/** `$HVAR_DATA_ROOT`, else `../shared/datasets` beside the repository (as model/hvar reads it). */
export const DATA_ROOT = process.env.HVAR_DATA_ROOT ?? fileURLToPath(new URL("../../../shared/datasets", import.meta.url));

/**
 * Set5 at x4 as the published numbers are measured: the standard MATLAB-bicubic LR copies
 * (`dev/Set5/LR_bicubic/X4`) and their HR images, cropped to 4x the LR. The images are read in place
 * (research-use terms: never copied into the repository).
 */
export async function set5x4(root = DATA_ROOT): Promise<Pair[]> {
  const set5 = join(root, "dev", "Set5");
  const names = (await readdir(join(set5, "HR"))).filter((n) => n.endsWith(".png")).sort();
  return Promise.all(
    names.map(async (file) => {
      const { data: lr, info } = await sharp(join(set5, "LR_bicubic", "X4", file.replace(/\.png$/, "x4.png")))
        .removeAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true });
      const hr = await sharp(join(set5, "HR", file))
        .removeAlpha()
        .extract({ left: 0, top: 0, width: 4 * info.width, height: 4 * info.height })
        .raw()
        .toBuffer();
      return { name: file.replace(/\.png$/, ""), lr, hr, width: info.width, height: info.height };
    }),
  );
}
