/**
 * PSNR on the Y channel of BT.601 YCbCr with `shave` border pixels left out, as the evaluation
 * protocol measures (model/hvar/eval.py; README "Evaluation protocol"), for interleaved 8-bit RGB.
 */
export function psnrY(a: Uint8Array, b: Uint8Array, width: number, height: number, shave: number): number {
  if (a.length !== b.length || a.length !== width * height * 3) throw new Error("images differ in size");
  const y = (p: Uint8Array, i: number) => 16 + (65.481 * (p[i] as number) + 128.553 * (p[i + 1] as number) + 24.966 * (p[i + 2] as number)) / 255;
  let sum = 0;
  let count = 0;
  for (let row = shave; row < height - shave; row++) {
    for (let col = shave; col < width - shave; col++) {
      const i = (row * width + col) * 3;
      const d = y(a, i) - y(b, i);
      sum += d * d;
      count++;
    }
  }
  const mse = sum / count;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}
