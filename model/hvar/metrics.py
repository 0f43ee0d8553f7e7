"""PSNR and SSIM on the Y channel, the way SR papers report them; and how streaky an added detail is.

Convention (EDSR/BasicSR, matches the published bicubic baselines): both images are uint8 RGB, Y is
MATLAB `rgb2ycbcr`'s luma computed in float and *not* rounded, `shave` = scale pixels are cut from
every border, and SSIM is Wang et al.'s MATLAB `ssim_index` (11x11 Gaussian, sigma 1.5, 'valid').
Grey (HxW) images are scored on their grey level directly.
"""

import numpy as np

# ITU-R BT.601 luma for RGB in [0, 1], offset to the 16..235 studio range (MATLAB rgb2ycbcr).
Y_COEFFS = (65.481, 128.553, 24.966)
SSIM_K1, SSIM_K2, SSIM_L = 0.01, 0.03, 255.0
SSIM_WIN, SSIM_SIGMA = 11, 1.5


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """HxWx3 RGB in 0..255 (uint8 or float) -> HxW float64 Y in 16..235. HxW input is returned as is."""
    x = np.asarray(img, dtype=np.float64)
    if x.ndim == 2:
        return x
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"expected HxW or HxWx3, got {x.shape}")
    cr, cg, cb = Y_COEFFS
    return 16.0 + (cr * x[..., 0] + cg * x[..., 1] + cb * x[..., 2]) / 255.0


def _prepare(a: np.ndarray, b: np.ndarray, shave: int) -> tuple[np.ndarray, np.ndarray]:
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    ya, yb = rgb_to_y(a), rgb_to_y(b)
    if shave > 0:
        ya, yb = ya[shave:-shave, shave:-shave], yb[shave:-shave, shave:-shave]
    return ya, yb


def psnr_y(sr: np.ndarray, hr: np.ndarray, shave: int = 0) -> float:
    """PSNR in dB on Y (peak 255) after cutting `shave` pixels per border; inf for identical images."""
    ya, yb = _prepare(sr, hr, shave)
    mse = np.mean((ya - yb) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def gaussian_window(size: int = SSIM_WIN, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """1-D normalised Gaussian; its outer product is MATLAB's fspecial('gaussian', size, sigma)."""
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(r * r) / (2 * sigma * sigma))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' 2-D filtering with the symmetric 1-D window g (filter2(g g', x, 'valid'))."""
    k = len(g)
    h, w = x.shape
    rows = sum(g[i] * x[i : h - k + 1 + i, :] for i in range(k))
    return sum(g[j] * rows[:, j : w - k + 1 + j] for j in range(k))


def ssim_y(sr: np.ndarray, hr: np.ndarray, shave: int = 0) -> float:
    """Mean SSIM on Y after cutting `shave` pixels per border (Wang et al. 2004, no downsampling)."""
    a, b = _prepare(sr, hr, shave)
    g = gaussian_window()
    c1, c2 = (SSIM_K1 * SSIM_L) ** 2, (SSIM_K2 * SSIM_L) ** 2
    mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
    var_a = _filter_valid(a * a, g) - mu_a * mu_a
    var_b = _filter_valid(b * b, g) - mu_b * mu_b
    cov = _filter_valid(a * b, g) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


def streakiness(sr: np.ndarray, base: np.ndarray, shave: int = 0) -> float:
    """How one-directional what `sr` adds to `base` is, on Y: |log2(Eh / Ev)|, Eh and Ev the mean squares
    of the horizontal and vertical differences of Y(sr) - Y(base). 0: as much change across as along; 1:
    one direction has twice the other's energy; 0 also where nothing is added. A decoder that fools NIQE
    with streaks scores 1.4-1.9 on Set5 / Set14 at realistic LR, what the HR adds to the floor 0.3 / 0.5
    (model/checkpoints/detail-texture, streak_probe.py)."""
    ya, yb = _prepare(sr, base, shave)
    added = ya - yb
    eh, ev = np.mean(np.diff(added, axis=1) ** 2), np.mean(np.diff(added, axis=0) ** 2)
    if eh == 0 or ev == 0:
        return 0.0 if eh == ev else float("inf")
    return abs(float(np.log2(eh / ev)))
