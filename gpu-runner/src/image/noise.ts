import { DEFAULT_CLEANUP } from "@hvar/contract";

/**
 * How noisy an image is, and the clean-up strength `cleanup=auto` gives it: 1 for a plainly noisy
 * photo, DEFAULT_CLEANUP otherwise. The same estimate as model/hvar/noise.py (Liu, Tanaka & Okutomi,
 * TIP 2013): the smallest eigenvalue of the covariance of 7x7 patches of Y, over the patches whose
 * gradient energy noise alone could explain, so that texture is not read as noise. The two agree on
 * test/gpu-runner/fixtures/noise; why the rule is worth having is in the model card ("cleanup=auto").
 */

const PATCH = 7;
const DIM = PATCH * PATCH;
/** Patches read on a regular grid: the work is bounded whatever the image's size (about 0.1 s). */
const MAX_PATCHES = 20_000;
const ITERATIONS = 5;
/** Estimated noise in Y, levels of 255, above which a photo is cleaned fully. */
export const NOISY_LEVEL = 2;
export const NOISY_CLEANUP = 1;

/** The strength `cleanup=auto` gives an image (interleaved 8-bit RGB). */
export function autoCleanup(rgb: Uint8Array, width: number, height: number): number {
  return noiseLevel(rgb, width, height) > NOISY_LEVEL ? NOISY_CLEANUP : DEFAULT_CLEANUP;
}

/** The standard deviation of the image's noise in Y (BT.601), levels of 255; 0 under 7 px a side. */
export function noiseLevel(rgb: Uint8Array, width: number, height: number): number {
  if (width < PATCH || height < PATCH) return 0;
  const luma = new Float64Array(width * height);
  for (let i = 0; i < luma.length; i++) {
    luma[i] = 16 + (65.481 * (rgb[3 * i] as number) + 128.553 * (rgb[3 * i + 1] as number) + 24.966 * (rgb[3 * i + 2] as number)) / 255;
  }
  const { patches, energy } = samplePatches(luma, width, height);
  // Noise of variance v alone gives a patch a gradient energy of about Gamma(n/2, 2 v t / n), t = 2 per difference.
  const differences = 4 * PATCH * (PATCH - 1);
  let variance = smallestVariance(patches, null);
  for (let round = 0; round < ITERATIONS; round++) {
    const limit = (variance * differences * gammaQuantile(DIM / 2) * 2) / DIM;
    const weak = energy.map((e) => (e < limit ? 1 : 0));
    if (weak.reduce((a, b) => a + b, 0) < 2 * DIM) break;
    const previous = variance;
    variance = smallestVariance(patches, weak);
    if (Math.abs(variance - previous) <= 1e-3 * previous) break;
  }
  return Math.sqrt(variance);
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

/** The smallest eigenvalue (never below 0) of the covariance (n - 1 normalized) of the patches `keep` marks, or of all. */
function smallestVariance(patches: Float64Array, keep: Float64Array | null): number {
  const mean = new Float64Array(DIM);
  const cov = new Float64Array(DIM * DIM);
  let n = 0;
  for (let p = 0; p * DIM < patches.length; p++) {
    if (keep && keep[p] === 0) continue;
    n++;
    for (let i = 0; i < DIM; i++) mean[i] = (mean[i] as number) + (patches[p * DIM + i] as number);
  }
  for (let i = 0; i < DIM; i++) mean[i] = (mean[i] as number) / n;
  const centred = new Float64Array(DIM);
  for (let p = 0; p * DIM < patches.length; p++) {
    if (keep && keep[p] === 0) continue;
    for (let i = 0; i < DIM; i++) centred[i] = (patches[p * DIM + i] as number) - (mean[i] as number);
    for (let i = 0; i < DIM; i++) {
      const a = centred[i] as number;
      for (let j = i; j < DIM; j++) cov[i * DIM + j] = (cov[i * DIM + j] as number) + a * (centred[j] as number);
    }
  }
  for (let i = 0; i < DIM; i++) {
    for (let j = i; j < DIM; j++) cov[j * DIM + i] = cov[i * DIM + j] = (cov[i * DIM + j] as number) / (n - 1);
  }
  return Math.max(Math.min(...symmetricEigenvalues(cov, DIM)), 0);
}

/**
 * Eigenvalues of a small symmetric matrix by cyclic Jacobi rotations (Golub & Van Loan 8.5): a 49x49
 * covariance takes a few sweeps, and the runner needs no linear-algebra library for it.
 */
function symmetricEigenvalues(matrix: Float64Array, n: number): number[] {
  const a = Float64Array.from(matrix);
  const at = (i: number, j: number): number => a[i * n + j] as number;
  const scale = a.reduce((s, v) => s + v * v, 0);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += at(i, j) ** 2;
    if (off <= 1e-30 * scale) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = at(p, q);
        if (apq === 0) continue;
        const theta = (at(q, q) - at(p, p)) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          // columns p and q, then rows p and q: A <- J^T A J
          const akp = at(k, p);
          const akq = at(k, q);
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = at(p, k);
          const aqk = at(q, k);
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
      }
    }
  }
  return Array.from({ length: n }, (_, i) => at(i, i));
}

/** The 99% quantile of Gamma(shape, 1), by Wilson and Hilferty's cube-root normal approximation. */
function gammaQuantile(shape: number, z = 2.326): number {
  return shape * (1 - 1 / (9 * shape) + z * Math.sqrt(1 / (9 * shape))) ** 3;
}
