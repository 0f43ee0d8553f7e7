"""NIQE, the no-reference "naturalness" score (Mittal, Soundararajan, Bovik, IEEE SPL 2013); lower = better.

Generative SR can invent plausible detail that PSNR/SSIM punish, so papers report NIQE next to them.
This is a numpy port of BasicSR's `calculate_niqe(img, crop_border=0, input_order='HWC', convert_to='y')`,
which reproduces LIVE's MATLAB release: Y rounded to integers, two scales (full and MATLAB-bicubic half),
MSCN coefficients on non-overlapping 96x96 blocks, 18 generalized-Gaussian features per block and scale,
a Gaussian fitted to the blocks' 36-d features, and its distance to the one fitted to pristine photos.
The pristine model and the 7x7 window come from `shared/metrics/niqe_pris_params.npz` (see its README).

The image and its coefficients are float32, as in BasicSR (scipy's convolve returns its input's dtype), and
that is not just precision: in flat regions the float32 local mean rounds back to the pixel value, so the
coefficients are exactly 0, where float64 leaves ~1e-15 residues whose signs change the sample counts of
the AGGD fits. With few blocks that moves the score a lot (Set5 head: 8.72 in float64, 8.35 in float32).
"""

import argparse
import functools
import math
from pathlib import Path

import numpy as np

from hvar.imresize import imresize
from hvar.metrics import rgb_to_y
from hvar.paths import metrics_root

BLOCK = 96  # block side at full scale (the size the pristine model was fitted on); 48 at half scale
PARAMS_FILE = "niqe_pris_params.npz"

# Shape parameters searched by the moment-matching fit, and the ratio E[|x|]^2 / E[x^2] each one implies:
# Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)). The grid is BasicSR's, so the argmin lands on the same alpha.
ALPHAS = np.arange(0.2, 10.001, 0.001)  # (9801,)
_gamma = np.vectorize(math.gamma)  # numpy has no gamma function and scipy is not a dependency
R_ALPHAS = _gamma(2 / ALPHAS) ** 2 / (_gamma(1 / ALPHAS) * _gamma(3 / ALPHAS))


@functools.cache
def load_params(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mu_pris (36,), cov_pris (36, 36), window (7, 7)) from the npz, read once per process."""
    path = Path(path) if path is not None else metrics_root() / PARAMS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"NIQE parameters not found at {path}: set HVAR_METRICS_ROOT to the shared/metrics folder"
        )
    with np.load(path) as d:
        return d["mu_pris_param"].reshape(-1), d["cov_pris_param"], d["gaussian_window"]


def aggd_fit(x: np.ndarray) -> tuple[float, float, float]:
    """Asymmetric generalized Gaussian fit by moment matching (paper Eq. 7): (alpha, beta_left, beta_right).

    A flat block has no negative (or positive) coefficients: its stds are NaN and so is the fit,
    which the caller's NaN-aware mean and covariance then skip, as MATLAB's nanmean/nancov do.
    """
    x = x.ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = np.sqrt(np.mean(x[x < 0] ** 2)) if np.any(x < 0) else np.nan
        right_std = np.sqrt(np.mean(x[x > 0] ** 2)) if np.any(x > 0) else np.nan
        g = left_std / right_std
        rhat = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
        rhat_norm = rhat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    alpha = float(ALPHAS[np.argmin((R_ALPHAS - rhat_norm) ** 2)])  # NaN everywhere -> index 0, as BasicSR
    s = math.sqrt(math.gamma(1 / alpha) / math.gamma(3 / alpha))
    return alpha, float(left_std) * s, float(right_std) * s  # float64 products, as BasicSR's


def block_features(block: np.ndarray) -> list[float]:
    """18 features of an MSCN block: GGD (alpha, scale), AGGD (alpha, mean, beta_l, beta_r) x 4 shifts."""
    alpha, bl, br = aggd_fit(block)
    feat = [alpha, (bl + br) / 2]  # symmetric GGD: one scale, the mean of both sides
    # Products of neighbours (horizontal, vertical, two diagonals) capture the structure distortions break.
    # np.roll wraps around the block edge, as BasicSR does; MATLAB's circshift does the same.
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        alpha, bl, br = aggd_fit(block * np.roll(block, shift, axis=(0, 1)))
        mean = (br - bl) * (math.gamma(2 / alpha) / math.gamma(1 / alpha))  # paper Eq. 8
        feat += [alpha, mean, bl, br]
    return feat


def filter_nearest(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Same-size 2-D convolution with edge-replicated borders (scipy.ndimage.convolve mode='nearest').

    Sums in float64 and returns x's dtype, as scipy does.
    """
    kh, kw = w.shape
    h, wd = x.shape
    p = np.pad(x.astype(np.float64), ((kh // 2, kh - 1 - kh // 2), (kw // 2, kw - 1 - kw // 2)), mode="edge")
    wf = w[::-1, ::-1]  # convolution flips the kernel (a no-op for the symmetric Gaussian)
    out = sum(wf[i, j] * p[i : i + h, j : j + wd] for i in range(kh) for j in range(kw))
    return out.astype(x.dtype)


def mscn(y: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients (paper Eq. 1), HxW -> HxW, in y's dtype."""
    mu = filter_nearest(y, window)
    sigma = np.sqrt(np.abs(filter_nearest(y * y, window) - mu * mu))  # abs: rounding can dip below 0
    return (y - mu) / (sigma + 1)


def niqe_y(y: np.ndarray) -> float:
    """NIQE of an HxW luma image in 0..255, cropped to whole 96x96 blocks from the top left."""
    nh, nw = y.shape[0] // BLOCK, y.shape[1] // BLOCK
    # The image's features are fitted by a covariance, which one block cannot give (BasicSR's SVD fails).
    if nh * nw < 2:
        raise ValueError(
            f"NIQE needs at least two whole {BLOCK}x{BLOCK} blocks, got an image of {y.shape[:2]}"
        )
    mu_pris, cov_pris, window = load_params()
    y = np.asarray(y, dtype=np.float32)[: nh * BLOCK, : nw * BLOCK]  # float32: see the module docstring
    feats = []  # per scale: (blocks, 18), blocks in column-major order like BasicSR
    for scale in (1, 2):
        m = mscn(y, window)
        b = BLOCK // scale
        blocks = [m[i * b : (i + 1) * b, j * b : (j + 1) * b] for j in range(nw) for i in range(nh)]
        feats.append(np.array([block_features(blk) for blk in blocks]))
        if scale == 1:
            # MATLAB imresize(0.5) of the float image in 0..1, back to float32 0..255, as BasicSR does it.
            y = imresize(y / 255, 0.5).astype(np.float32) * 255
    f = np.concatenate(feats, axis=1)  # (blocks, 36)
    good = f[~np.isnan(f).any(axis=1)]  # nancov: drop blocks with any NaN feature
    if len(good) < 2:
        raise ValueError(f"NIQE is undefined: only {len(good)} of {len(f)} blocks have texture (not flat)")
    mu = np.nanmean(f, axis=0)  # the mean keeps every block's non-NaN features, as MATLAB's nanmean
    cov = np.cov(good, rowvar=False)
    d = mu_pris - mu
    return float(np.sqrt(d @ np.linalg.pinv((cov_pris + cov) / 2) @ d))


def niqe(img: np.ndarray) -> float:
    """NIQE of a uint8 HxWx3 RGB image (scored on Y) or HxW grey image; no border crop. Lower is better."""
    # Y rounded to integers as BasicSR does "for consistency with MATLAB" (which scores a uint8 Y image).
    return niqe_y(np.round(rgb_to_y(img)))


def main(argv: list[str] | None = None) -> None:
    from PIL import Image

    ap = argparse.ArgumentParser(prog="python -m hvar.niqe", description=__doc__.split("\n")[0])
    ap.add_argument("images", nargs="+", help="image files; RGB images are scored on Y, grey ones as is")
    args = ap.parse_args(argv)
    for path in args.images:
        im = Image.open(path)
        arr = np.asarray(im if im.mode == "L" else im.convert("RGB"))
        print(f"{niqe(arr):.4f}  {path}")


if __name__ == "__main__":
    main()
