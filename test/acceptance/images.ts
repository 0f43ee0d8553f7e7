import sharp from "sharp";

/** Raw interleaved 8-bit RGB with its size. */
export interface Raw {
  width: number;
  height: number;
  rgb: Buffer;
}

export function raw(width: number, height: number, pixel: (x: number, y: number) => readonly [number, number, number]): Raw {
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) rgb.set(pixel(x, y), (y * width + x) * 3);
  return { width, height, rgb };
}

export async function fromFile(bytes: Buffer, options: { width?: number; grey?: boolean } = {}): Promise<Raw> {
  let pipeline = sharp(bytes).removeAlpha();
  if (options.width) pipeline = pipeline.resize({ width: options.width, kernel: "lanczos3" });
  if (options.grey) pipeline = pipeline.greyscale();
  const { data, info } = await pipeline.toColourspace("srgb").raw().toBuffer({ resolveWithObject: true });
  if (info.channels === 3) return { width: info.width, height: info.height, rgb: data };
  const rgb = Buffer.alloc(info.width * info.height * 3); // grey: the same level in every channel
  for (let p = 0; p < info.width * info.height; p++) rgb.fill(data[p * info.channels] as number, p * 3, p * 3 + 3);
  return { width: info.width, height: info.height, rgb };
}

export function png(image: Raw): Promise<Buffer> {
  return sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer();
}

// ---- the reference: MATLAB's bicubic (Keys, a = -0.5; mirrored edges with the edge repeated) ----------
function keys(x: number): number {
  const a = Math.abs(x);
  if (a <= 1) return 1.5 * a ** 3 - 2.5 * a ** 2 + 1;
  return a < 2 ? -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2 : 0;
}

function symmetric(i: number, n: number): number {
  const period = 2 * n;
  const m = ((i % period) + period) % period;
  return m < n ? m : period - 1 - m;
}

/** Bicubic upscale by an integer factor (no antialiasing is needed upwards), unrounded. */
export function bicubic(image: Raw, scale: number): Float64Array {
  const { width: w, height: h } = image;
  const W = w * scale;
  const H = h * scale;
  const taps = (n: number, i: number) => {
    const u = (i + 0.5) / scale - 0.5;
    const f = Math.floor(u);
    return [-1, 0, 1, 2].map((k) => ({ index: symmetric(f + k, n), weight: keys(u - f - k) }));
  };
  const rows = new Float64Array(w * H * 3);
  for (let y = 0; y < H; y++) {
    const ty = taps(h, y);
    for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) rows[(y * w + x) * 3 + c] = ty.reduce((s, t) => s + t.weight * (image.rgb[(t.index * w + x) * 3 + c] as number), 0);
  }
  const out = new Float64Array(W * H * 3);
  for (let x = 0; x < W; x++) {
    const tx = taps(w, x);
    for (let y = 0; y < H; y++) for (let c = 0; c < 3; c++) out[(y * W + x) * 3 + c] = tx.reduce((s, t) => s + t.weight * (rows[(y * w + t.index) * 3 + c] as number), 0);
  }
  return out;
}

// ---- measurements --------------------------------------------------------------------------------------
export function psnr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let se = 0;
  for (let i = 0; i < a.length; i++) se += ((a[i] as number) - (b[i] as number)) ** 2;
  return 10 * Math.log10((255 * 255) / Math.max(se / a.length, 1e-10));
}

/** Largest |a - round(b)| over all values. */
export function worstLevels(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] as number) - Math.round(b[i] as number)));
  return worst;
}

/**
 * The part of `out - reference` that repeats with the tile period: the mean difference over every
 * column (and row) position modulo `period`, averaged over channels; returns the larger of the two
 * profiles' ranges in levels, `margin` pixels along the border left out (what happens there is not
 * periodic). A blob in every tile shows here even when each pixel is within tolerance.
 */
export function tilePeriodAmplitude(out: ArrayLike<number>, reference: ArrayLike<number>, width: number, height: number, period: number, margin: number): number {
  const columns = new Float64Array(period);
  const rows = new Float64Array(period);
  const columnCount = new Float64Array(period);
  const rowCount = new Float64Array(period);
  for (let y = margin; y < height - margin; y++) {
    for (let x = margin; x < width - margin; x++) {
      let d = 0;
      for (let c = 0; c < 3; c++) d += ((out[(y * width + x) * 3 + c] as number) - (reference[(y * width + x) * 3 + c] as number)) / 3;
      columns[x % period] = (columns[x % period] as number) + d;
      columnCount[x % period] = (columnCount[x % period] as number) + 1;
      rows[y % period] = (rows[y % period] as number) + d;
      rowCount[y % period] = (rowCount[y % period] as number) + 1;
    }
  }
  const range = (sums: Float64Array, counts: Float64Array) => {
    const means = Array.from(sums, (s, i) => s / (counts[i] as number)).filter(Number.isFinite);
    return Math.max(...means) - Math.min(...means);
  };
  return Math.max(range(columns, columnCount), range(rows, rowCount));
}

/** Largest difference between the channels of one pixel. */
export function channelSpread(image: Raw): number {
  let worst = 0;
  for (let p = 0; p < image.width * image.height; p++) {
    const [r, g, b] = [image.rgb[p * 3], image.rgb[p * 3 + 1], image.rgb[p * 3 + 2]] as [number, number, number];
    worst = Math.max(worst, Math.max(r, g, b) - Math.min(r, g, b));
  }
  return worst;
}

export function meanColour(image: Raw): [number, number, number] {
  const sum = [0, 0, 0];
  for (let i = 0; i < image.rgb.length; i++) sum[i % 3] = (sum[i % 3] as number) + (image.rgb[i] as number);
  const n = image.width * image.height;
  return [(sum[0] as number) / n, (sum[1] as number) / n, (sum[2] as number) / n];
}

// ---- degradations, light to heavy ----------------------------------------------------------------------
/** A seeded generator (mulberry32): the same noise on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function noisy(image: Raw, sigma: number, seed = 1): Raw {
  const next = random(seed);
  const rgb = Buffer.alloc(image.rgb.length);
  for (let i = 0; i < rgb.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - next()));
    const t = 2 * Math.PI * next();
    rgb[i] = Math.max(0, Math.min(255, Math.round((image.rgb[i] as number) + sigma * r * Math.cos(t))));
    if (i + 1 < rgb.length) rgb[i + 1] = Math.max(0, Math.min(255, Math.round((image.rgb[i + 1] as number) + sigma * r * Math.sin(t))));
  }
  return { ...image, rgb };
}

export async function jpeg(image: Raw, quality: number): Promise<Raw> {
  const bytes = await sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } }).jpeg({ quality }).toBuffer();
  return fromFile(bytes);
}

export async function blurred(image: Raw, sigma: number): Promise<Raw> {
  const { data } = await sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } }).blur(sigma).raw().toBuffer({ resolveWithObject: true });
  return { ...image, rgb: data };
}
