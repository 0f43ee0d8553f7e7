import { DEFAULT_CLEANUP, FINE_JPEG_CLEANUP } from "@hvar/contract";

/**
 * How noisy an image is, and the clean-up strength `cleanup=auto` gives it: 1 for a plainly noisy
 * photo, less for a JPEG of quality 90 or finer (FINE_JPEG_CLEANUP), DEFAULT_CLEANUP otherwise. The
 * same estimate as model/hvar/noise.py (Liu, Tanaka & Okutomi, TIP 2013): the smallest eigenvalue of the covariance of 7x7 patches of Y, over the patches whose
 * gradient energy noise alone could explain, so that texture is not read as noise. The two agree on
 * test/gpu-runner/fixtures/noise; why the rule is worth having is in the model card ("cleanup=auto").
 */

const PATCH = 7;
const DIM = PATCH * PATCH;
/** Patches read on a regular grid: the work is bounded whatever the image's size (15-70 ms here). */
const MAX_PATCHES = 20_000;
const ITERATIONS = 5;
/** Estimated noise in Y, levels of 255, above which a photo is cleaned fully. */
export const NOISY_LEVEL = 2;
export const NOISY_CLEANUP = 1;

/**
 * The strength `cleanup=auto` gives an image whose noise reads `level` (noiseLevel), saved as a JPEG
 * of `jpegQuality` where it was one.
 */
export function cleanupFor(level: number, jpegQuality?: number): number {
  if (level > NOISY_LEVEL) return NOISY_CLEANUP;
  const fine = jpegQuality === undefined ? undefined : FINE_JPEG_CLEANUP.find(([quality]) => jpegQuality >= quality);
  return fine === undefined ? DEFAULT_CLEANUP : fine[1];
}

/** The standard deviation of the image's noise in Y (BT.601), levels of 255; 0 under 7 px a side. */
export function noiseLevel(rgb: Uint8Array, width: number, height: number): number {
  if (width < PATCH || height < PATCH) return 0;
  const luma = new Float64Array(width * height);
  for (let i = 0; i < luma.length; i++) {
    luma[i] = 16 + (65.481 * (rgb[3 * i] as number) + 128.553 * (rgb[3 * i + 1] as number) + 24.966 * (rgb[3 * i + 2] as number)) / 255;
  }
  const { patches, energy } = samplePatches(luma, width, height);
  // Weak patches are those whose gradient energy is under a limit: taken in order of energy, a prefix.
  // Each round moves the prefix's end, so the sums are brought there by the patches in between (or made
  // again from the start, when that is less work) instead of read again over every weak patch.
  const order = Uint32Array.from(energy.keys()).sort((a, b) => (energy[a] as number) - (energy[b] as number));
  const sorted = Float64Array.from(order, (p) => energy[p] as number);
  const sums = new PatchSums(patches);
  let end = order.length;
  sums.restart(order, end);
  // Noise of variance v alone gives a patch a gradient energy of about Gamma(n/2, 2 v t / n), t = 2 per difference.
  const differences = 4 * PATCH * (PATCH - 1);
  let variance = sums.smallestVariance();
  for (let round = 0; round < ITERATIONS; round++) {
    const limit = (variance * differences * gammaQuantile(DIM / 2) * 2) / DIM;
    const weak = countBelow(sorted, limit);
    if (weak < 2 * DIM) break;
    if (weak > end) sums.update(order, end, weak, 1);
    else if (end - weak <= weak) sums.update(order, weak, end, -1);
    else sums.restart(order, weak);
    end = weak;
    const previous = variance;
    variance = sums.smallestVariance();
    if (Math.abs(variance - previous) <= 1e-3 * previous) break;
  }
  return Math.sqrt(variance);
}

/** How many of the ascending `values` are below `limit`. */
function countBelow(values: Float64Array, limit: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((values[mid] as number) < limit) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Every `stride`-th 7x7 patch (row-major, as numpy's sliding windows) and its gradient energy. */
function samplePatches(luma: Float64Array, width: number, height: number): { patches: Float64Array; energy: Float64Array } {
  const stride = Math.max(1, Math.ceil(Math.sqrt(((height - PATCH + 1) * (width - PATCH + 1)) / MAX_PATCHES)));
  const rows = Math.floor((height - PATCH) / stride) + 1;
  const cols = Math.floor((width - PATCH) / stride) + 1;
  const patches = new Float64Array(rows * cols * DIM);
  const energy = new Float64Array(rows * cols);
  for (let r = 0, p = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++, p++) {
      let sum = 0;
      for (let y = 0; y < PATCH; y++) {
        for (let x = 0; x < PATCH; x++) {
          const at = (r * stride + y) * width + c * stride + x;
          const value = luma[at] as number;
          patches[p * DIM + y * PATCH + x] = value;
          if (x > 0) sum += (value - (luma[at - 1] as number)) ** 2;
          if (y > 0) sum += (value - (luma[at - width] as number)) ** 2;
        }
      }
      energy[p] = sum;
    }
  }
  return { patches, energy };
}

/** Sums over a set of patches (the count, each pixel's, each pair of pixels' products) and their covariance. */
class PatchSums {
  private count = 0;
  private readonly sum = new Float64Array(DIM);
  /** Upper triangle of the sum of x x^T. */
  private readonly products = new Float64Array(DIM * DIM);

  constructor(private readonly patches: Float64Array) {}

  /** Adds (sign 1) or takes away (sign -1) the patches `order[from .. to)`. */
  update(order: Uint32Array, from: number, to: number, sign: 1 | -1): void {
    const { patches, sum, products } = this;
    for (let k = from; k < to; k++) {
      const x = patches.subarray((order[k] as number) * DIM, (order[k] as number) * DIM + DIM);
      for (let i = 0; i < DIM; i++) {
        const a = sign * (x[i] as number);
        sum[i] = (sum[i] as number) + a;
        const row = i * DIM;
        for (let j = i; j < DIM; j++) products[row + j] = (products[row + j] as number) + a * (x[j] as number);
      }
    }
    this.count += sign * (to - from);
  }

  /** The sums of `order[0 .. to)` alone. */
  restart(order: Uint32Array, to: number): void {
    this.count = 0;
    this.sum.fill(0);
    this.products.fill(0);
    this.update(order, 0, to, 1);
  }

  /** The smallest eigenvalue (never below 0) of the patches' covariance (n - 1 normalized). */
  smallestVariance(): number {
    const n = this.count;
    const cov = new Float64Array(DIM * DIM);
    for (let i = 0; i < DIM; i++) {
      for (let j = i; j < DIM; j++) {
        const mi = (this.sum[i] as number) / n;
        const mj = (this.sum[j] as number) / n;
        cov[j * DIM + i] = cov[i * DIM + j] = ((this.products[i * DIM + j] as number) - n * mi * mj) / (n - 1);
      }
    }
    return Math.max(smallestEigenvalue(cov, DIM), 0);
  }
}

/**
 * The smallest eigenvalue of a small symmetric matrix: Householder reduction to a tridiagonal matrix,
 * then bisection on its Sturm sequences (Golub & Van Loan 8.3.1 and 8.4.1). The runner needs no
 * linear-algebra library for a 49x49 covariance.
 */
function smallestEigenvalue(matrix: Float64Array, n: number): number {
  const a = Float64Array.from(matrix);
  const at = (i: number, j: number): number => a[i * n + j] as number;
  const v = new Float64Array(n);
  const q = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    // The reflection that zeroes column k below its subdiagonal, applied from both sides: A - v q^T - q v^T.
    let norm2 = 0;
    for (let i = k + 1; i < n; i++) norm2 += at(i, k) ** 2;
    if (norm2 === 0) continue;
    const x0 = at(k + 1, k);
    const alpha = x0 > 0 ? -Math.sqrt(norm2) : Math.sqrt(norm2);
    const half = norm2 - x0 * alpha; // v^T v / 2
    v.fill(0);
    v[k + 1] = x0 - alpha;
    for (let i = k + 2; i < n; i++) v[i] = at(i, k);
    let vp = 0;
    for (let i = k; i < n; i++) {
      let sum = 0;
      for (let j = k + 1; j < n; j++) sum += at(i, j) * (v[j] as number);
      q[i] = sum / half;
      vp += (v[i] as number) * (q[i] as number);
    }
    const shift = vp / (2 * half);
    for (let i = k; i < n; i++) q[i] = (q[i] as number) - shift * (v[i] as number);
    for (let i = k; i < n; i++) {
      for (let j = k; j < n; j++) a[i * n + j] = at(i, j) - (v[i] as number) * (q[j] as number) - (q[i] as number) * (v[j] as number);
    }
  }
  // Gershgorin's bounds, then halve them: the count of eigenvalues below x is the count of negative pivots.
  const diagonal = (i: number) => at(i, i);
  const off = (i: number) => (i > 0 ? at(i, i - 1) : 0);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const radius = Math.abs(off(i)) + Math.abs(i + 1 < n ? off(i + 1) : 0);
    lo = Math.min(lo, diagonal(i) - radius);
    hi = Math.max(hi, diagonal(i) + radius);
  }
  const below = (x: number): number => {
    let count = 0;
    let pivot = 1;
    for (let i = 0; i < n; i++) {
      pivot = diagonal(i) - x - (i > 0 ? off(i) ** 2 / pivot : 0);
      if (pivot === 0) pivot = Number.MIN_VALUE;
      if (pivot < 0) count++;
    }
    return count;
  };
  for (let step = 0; step < 200 && hi - lo > 1e-13 * Math.max(Math.abs(lo), Math.abs(hi), 1e-300); step++) {
    const mid = (lo + hi) / 2;
    if (below(mid) >= 1) hi = mid;
    else lo = mid;
  }
  return (lo + hi) / 2;
}

/** The 99% quantile of Gamma(shape, 1), by Wilson and Hilferty's cube-root normal approximation. */
function gammaQuantile(shape: number, z = 2.326): number {
  return shape * (1 - 1 / (9 * shape) + z * Math.sqrt(1 / (9 * shape))) ** 3;
}
