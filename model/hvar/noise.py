"""How noisy a photo is, and the clean-up strength that follows: what `cleanup=auto` does.

A blind restorer cannot tell a camera's grain from noise, so the product cleans at 0.75 by default;
but a photo that is plainly noisy wants the full strength (+0.2 dB at x2 under noise of 10 levels,
+0.7 under 25; x1 +0.4 / +0.8). Reading that needs an estimate that texture does not fool: Liu,
Tanaka & Okutomi (TIP 2013) take the smallest eigenvalue of the covariance of 7x7 patches, over the
patches whose gradient energy noise alone could explain (weak texture), and iterate. On the benchmarks'
clean and JPEG LR it reads at most 1.7 levels but one comic JPEG; under noise of 10 levels (5.7 in Y)
it reads 1-5.4 (`model/checkpoints/floor-x2/eval/noise-rule-probe.md`). A photo that is not noisy and
came as a JPEG of quality 90 or finer (read from the file's own quantization table) has little damage to
clean, and gets 0.5 (0.25 from quality 95): the grain and texture it keeps are worth more than the
little it repairs.

The runner does the same in TypeScript (gpu-runner/src/image/noise.ts); the two agree on the parity
images of test/gpu-runner/fixtures/noise (`python -m hvar.noise --fixtures`).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from hvar.metrics import rgb_to_y

AUTO = "auto"  # the strength's name in the API, the CLI and the evaluation
PATCH = 7  # side of the patches whose covariance is read
MAX_PATCHES = 20_000  # patches sampled on a regular grid: a bound on the work whatever the image's size
ITERATIONS = 5
NOISY_LEVEL = 2.0  # estimated noise (levels of 255, Y) above which a photo is cleaned fully
NOISY_CLEANUP = 1.0
QUIET_CLEANUP = 0.75  # DEFAULT_CLEANUP in packages/contract: what a photo that is not noisy gets
# A JPEG file saved at quality 90 or finer holds little compression damage: not noisy, it is cleaned
# less, (quality at or above, strength), finest first: FINE_JPEG_CLEANUP in packages/contract
# (`model/checkpoints/floor-x2/eval/finejpeg.md` has the measurements).
FINE_JPEG = ((95, 0.25), (90, 0.5))
# ITU T.81 Annex K's luminance quantization table, IJG's quality 50: only its sum is read
STANDARD_LUMINANCE_SUM = 3688


def grid_stride(height: int, width: int) -> int:
    """The step between sampled patch corners, so that at most MAX_PATCHES are read."""
    count = (height - PATCH + 1) * (width - PATCH + 1)
    return max(1, math.ceil(math.sqrt(count / MAX_PATCHES)))


def gamma_quantile(shape: float, z: float = 2.326) -> float:
    """The 99% quantile of Gamma(shape, 1), by Wilson and Hilferty's cube-root normal approximation."""
    return shape * (1 - 1 / (9 * shape) + z * math.sqrt(1 / (9 * shape))) ** 3


def smallest_variance(patches: np.ndarray) -> float:
    """The smallest eigenvalue of the patches' covariance (N-1 normalized): the noise's variance."""
    return max(float(np.linalg.eigvalsh(np.cov(patches, rowvar=False))[0]), 0.0)


def noise_level(rgb: np.ndarray) -> float:
    """The standard deviation of the image's noise in Y, in levels of 255 (0 for an image under 7 px)."""
    # a grey image as the runner sees it: three equal channels, so Y is 16 + 219/255 of the grey level
    Y = rgb_to_y(rgb if rgb.ndim == 3 else np.stack([rgb] * 3, -1))
    if min(Y.shape) < PATCH:
        return 0.0
    s = grid_stride(*Y.shape)
    windows = np.lib.stride_tricks.sliding_window_view(Y, (PATCH, PATCH))[::s, ::s]  # h w 7 7
    patches = windows.reshape(-1, PATCH * PATCH)
    energy = (np.diff(windows, axis=3) ** 2).sum((2, 3)) + (np.diff(windows, axis=2) ** 2).sum((2, 3))
    energy = energy.reshape(-1)
    # noise of variance v alone gives each patch a gradient energy of about Gamma(n/2, 2 v t / n), where
    # t (the trace of the difference operators' Gram matrix) is 2 per difference taken
    n, t = PATCH * PATCH, 4 * PATCH * (PATCH - 1)
    variance = smallest_variance(patches)
    for _ in range(ITERATIONS):
        weak = patches[energy < variance * t * gamma_quantile(n / 2) * 2 / n]
        if len(weak) < 2 * n:
            break
        variance, previous = smallest_variance(weak), variance
        if abs(variance - previous) <= 1e-3 * previous:
            break
    return math.sqrt(variance)


def auto_cleanup(rgb: np.ndarray, jpeg_quality: int | None = None) -> float:
    """The strength `cleanup=auto` gives this image: full for a noisy photo, FINE_JPEG's for one that
    came as a JPEG file of `jpeg_quality` 90 or finer, else the default."""
    if noise_level(rgb) > NOISY_LEVEL:
        return NOISY_CLEANUP
    if jpeg_quality is None:
        return QUIET_CLEANUP
    return next((s for q, s in FINE_JPEG if jpeg_quality >= q), QUIET_CLEANUP)


def table_quality(table: list[int]) -> int:
    """The IJG-equivalent quality (1-100) of a JPEG's luminance quantization table (any order): libjpeg's
    scale inverted, 5000 / q percent of the standard table below quality 50 and 200 - 2q from 50
    (gpu-runner/src/image/jpeg-quality.ts reads the file's table the same way)."""
    scale = 100 * sum(table) / STANDARD_LUMINANCE_SUM
    quality = (200 - scale) / 2 if scale <= 100 else 5000 / scale
    return min(100, max(1, round(quality)))


def file_jpeg_quality(path: Path) -> int | None:
    """The quality of a JPEG file (its table 0), None for any other file."""
    with Image.open(path) as im:
        tables = getattr(im, "quantization", None) if im.format == "JPEG" else None
        return table_quality(list(tables[0])) if tables and 0 in tables else None


# ---- parity fixtures for the runner's implementation --------------------------------------------------
FIXTURES = Path(__file__).resolve().parents[2] / "test" / "gpu-runner" / "fixtures" / "noise"


def smooth_field(height: int, width: int) -> np.ndarray:
    """A smooth, noiseless colour image (float, HxWx3, levels 30-180): a test's clean photo."""
    yy, xx = np.mgrid[0:height, 0:width] / 32.0
    # not separable in x and y, or 7x7 patches would span fewer than 49 dimensions
    r, g, b = 120 + 60 * np.sin(xx * yy), 100 + 50 * np.cos(yy + xx**2 / 4), 90 + 40 * np.sin(xx - yy)
    return np.stack([r, g, b], -1)


def fixture_images() -> dict[str, np.ndarray]:
    """Small images the two implementations must read alike: smooth, textured, noisy, large, odd-sized."""
    rng = np.random.default_rng(7)
    smooth = smooth_field(96, 128)
    big = smooth_field(150, 180)  # 25,056 patches: the grid takes every other
    stripes = smooth + 50 * np.sign(np.sin(7 * np.mgrid[0:96, 0:128][1] / 32.0))[..., None]
    images = {
        "smooth": smooth,
        "stripes": stripes,
        "noise4": smooth + rng.normal(0, 4, smooth.shape),
        "noise20": stripes + rng.normal(0, 20, smooth.shape),
        "big-noise8": big + rng.normal(0, 8, big.shape),
        "odd": smooth[:37, :61] + rng.normal(0, 3, (37, 61, 3)),
    }
    return {name: np.clip(np.round(im), 0, 255).astype(np.uint8) for name, im in images.items()}


def write_fixtures() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    levels = {}
    for name, im in fixture_images().items():
        Image.fromarray(im).save(FIXTURES / f"{name}.png")
        levels[name] = round(noise_level(im), 6)
    qualities, smooth = {}, Image.fromarray(fixture_images()["smooth"])
    for quality in (50, 89, 90, 95):  # PIL writes libjpeg's tables, so each reads as saved
        path = FIXTURES / f"smooth-q{quality}.jpg"
        smooth.save(path, quality=quality)
        qualities[path.name] = file_jpeg_quality(path)
    rule = {
        "noisyLevel": NOISY_LEVEL, "noisy": NOISY_CLEANUP, "quiet": QUIET_CLEANUP,
        "fineJpeg": [list(step) for step in FINE_JPEG],
    }  # fmt: skip
    text = json.dumps({"rule": rule, "levels": levels, "jpegQualities": qualities}, indent=2) + "\n"
    (FIXTURES / "levels.json").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("image", nargs="*", type=Path, help="print each image's noise level and auto strength")
    ap.add_argument("--fixtures", action="store_true", help="write the runner's parity fixtures (FIXTURES)")
    args = ap.parse_args()
    if args.fixtures:
        write_fixtures()
    for path in args.image:
        im = np.asarray(Image.open(path).convert("RGB"))
        quality = file_jpeg_quality(path)
        saved = "" if quality is None else f", JPEG quality {quality}"
        print(f"{path}: noise {noise_level(im):.2f} levels{saved}, cleanup {auto_cleanup(im, quality)}")
