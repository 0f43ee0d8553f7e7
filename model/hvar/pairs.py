"""Training pairs made once: HR crops, their LR (MATLAB bicubic or the realistic recipe, fixed seeds) and
the clean targets of every output, cached as uint8 arrays so that a training step is pure network work.

Two kinds, each half bicubic LR and half degraded (of which 40% one light defect, `degrade.light`, on the
clean LR and 60% the realistic recipe), all with LR side `lr` (48 by default), 5% of the HR
crops smooth synthetic colour fields (`smooth_field`), the rest photo crops:
  x4 pairs: HR crop 4*lr; targets x1 = clean LR (MATLAB bicubic of HR), x2 = HR at half size, x4 = HR
  x2 pairs: HR crop 2*lr; targets x1 = clean LR, x2 = HR        (x4 has no target)
Pair i is fixed by (seed, kind, i), whatever the number of workers.

`--downscale` draws each photo crop from the photos at one of several sizes (MATLAB bicubic, antialiased),
as Real-ESRGAN trains on DF2K at 1, 3/4, 1/2 and 1/3. The training photos are wallpapers of about 1.5 MP:
their 48 px LR crops hold 30-90x less power above 0.26 cycles/px than crops of Set5 / Set14 (median),
and at a third of their size 3-5x less (`checkpoints/floor-restore-dense`), so a restorer taught on them
as taken sees the realistic recipe's blur on fine detail far less often than a benchmark, or a user's
small photo, shows it.

    python -m hvar.pairs --count 20000 --out .data/pairs      # both kinds, 20000 each (4 min, 2 cores)
    python -m hvar.pairs --out .data/pairs-dense --downscale 1 0.5 0.33 0.25   # crops of denser detail
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from hvar.data import load_images, random_crop
from hvar.degrade import bicubic_lr, light, make_lr
from hvar.imresize import imresize_uint8
from hvar.paths import data_root, list_images

KINDS = {"x4": (1, 2, 4), "x2": (1, 2)}  # kind -> scales with a target
SYNTHETIC = 0.05  # share of HR crops that are smooth colour fields instead of photo crops
LIGHT = 0.4  # share of the degraded pairs with one light defect instead of the realistic recipe
# What a pair is made of; one more whenever make_pair changes, so that a cache built by an older one is
# refused instead of training on another mix (2: light defects, `LIGHT`).
RECIPE = 2
DOWNSCALE = (1.0,)  # the photo sizes crops are drawn from (1: as taken); more than one draws one per crop


def photo_levels(
    images: tuple[np.ndarray, ...], factors: tuple[float, ...], workers: int = 1
) -> tuple[tuple[np.ndarray, ...], ...]:
    """The photos at each size factor: one tuple of uint8 HxWx3 per factor (1 leaves them as they are),
    each photo and factor resized by one of `workers` processes."""
    global _PHOTOS
    jobs = [(i, f) for f in factors if f != 1 for i in range(len(images))]
    _PHOTOS = images  # read by the forked workers, not sent to them
    try:
        if workers > 1 and len(jobs) > 1:
            with mp.get_context("fork").Pool(workers) as pool:
                resized = dict(zip(jobs, pool.map(_resize, jobs, chunksize=1), strict=True))
        else:
            resized = {job: _resize(job) for job in jobs}
    finally:
        _PHOTOS = ()
    return tuple(images if f == 1 else tuple(resized[i, f] for i in range(len(images))) for f in factors)


_PHOTOS: tuple[np.ndarray, ...] = ()


def _resize(job: tuple[int, float]) -> np.ndarray:
    i, factor = job
    return imresize_uint8(_PHOTOS[i], factor)


def smooth_field(rng: np.random.Generator, side: int) -> np.ndarray:
    """A side x side x 3 uint8 bilinear blend of four random corner colours: flat areas, gradients and
    pure colours, which 65 photos hardly hold and which a restoration network must leave alone.
    Half are steep (any corner colours, a third of the channels saturated at 0 or 255), half shallow
    (corners within 1-40 levels of one colour): the one-level steps of a quantized sky, which a
    network that sharpens edges turns into bands."""
    if rng.random() < 0.5:
        spread = np.exp(rng.uniform(0, np.log(40)))
        corners = np.clip(rng.uniform(0, 255, 3) + spread * rng.uniform(-1, 1, (2, 2, 3)), 0, 255)
    else:
        corners = rng.uniform(0, 255, (2, 2, 3))
        saturated = rng.random((2, 2, 3)) < 1 / 3
        corners[saturated] = rng.choice([0.0, 255.0], saturated.sum())
    t = np.linspace(0, 1, side)[:, None, None]
    top, bottom = corners[0, 0] * (1 - t) + corners[0, 1] * t, corners[1, 0] * (1 - t) + corners[1, 1] * t
    field = top[None, :, 0] * (1 - t) + bottom[None, :, 0] * t  # (side, side, 3)
    return np.round(field).astype(np.uint8)


def fine_texture(rng: np.random.Generator, side: int) -> np.ndarray:
    """A side x side x 3 uint8 image of one or two colour gratings at 0.12-0.45 cycles per pixel (half of
    them squared off, as woven cloth is), on a random colour, faded out across a random direction half
    the time: the fine, strong texture (barbara's tablecloth) that 65 photos hardly hold, and that a
    restorer taught to remove noise and JPEG blocks scrubs away when the image is also a little damaged."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float64)
    img = np.broadcast_to(rng.uniform(40, 215, 3), (side, side, 3)).copy()
    for _ in range(rng.integers(1, 3)):
        theta = rng.uniform(0, np.pi)
        phase = 2 * np.pi * rng.uniform(0.12, 0.45) * (xx * np.cos(theta) + yy * np.sin(theta))
        wave = np.sin(phase + rng.uniform(0, 2 * np.pi))
        if rng.random() < 0.5:
            wave = np.tanh(3 * wave) / np.tanh(3)
        img += rng.uniform(10, 90) * wave[..., None] * rng.uniform(0.3, 1.0, 3)
    if rng.random() < 0.5:
        theta = rng.uniform(0, 2 * np.pi)
        ramp = (xx * np.cos(theta) + yy * np.sin(theta)) / side
        fade = np.clip(0.5 + rng.uniform(1, 4) * (ramp - ramp.mean()), 0, 1)[..., None]
        img = img * fade + img.mean(axis=(0, 1)) * (1 - fade)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def make_pair(
    levels: tuple[tuple[np.ndarray, ...], ...],
    kind: str,
    i: int,
    lr_side: int,
    seed: int,
    synthetic: float = SYNTHETIC,
) -> dict[str, np.ndarray]:
    """LR and targets of pair i: {"lr": lr, "t1": .., "t2": .., ["t4": ..]}, uint8 HxWx3; `levels` are the
    photos at each `DOWNSCALE` size (`photo_levels`)."""
    scale = int(kind[1:])
    rng = np.random.default_rng([seed, scale, i])
    side = lr_side * scale
    if rng.random() < synthetic:
        hr = smooth_field(rng, side)
    else:  # one level alone draws nothing more, so such a cache is the one built before levels existed
        images = levels[int(rng.integers(len(levels)))] if len(levels) > 1 else levels[0]
        hr = random_crop(images, side, rng)
    hr = np.ascontiguousarray(hr)
    clean_lr = bicubic_lr(hr, scale)
    if i % 2 == 0:
        lr = clean_lr
    elif rng.random() < LIGHT:
        lr = light(clean_lr, rng)
    else:
        lr = make_lr(hr, scale, "realistic", rng)
    out = {"lr": lr, "t1": clean_lr}
    out["t2"] = hr if scale == 2 else bicubic_lr(hr, 2)
    if scale == 4:
        out["t4"] = hr
    return out


def shapes(kind: str, lr_side: int) -> dict[str, tuple[int, int, int]]:
    return {"lr": (lr_side, lr_side, 3)} | {f"t{s}": (lr_side * s, lr_side * s, 3) for s in KINDS[kind]}


def too_small(factors: list[float], crop: int) -> float | None:
    """The first factor at which no training photo holds a crop x crop HR crop (read from the headers)."""
    sides = [min(Image.open(p).size) for p in list_images(data_root() / "train")]
    return next((f for f in factors if not any(math.ceil(side * f) >= crop for side in sides)), None)


_LEVELS: tuple[tuple[np.ndarray, ...], ...] = ()  # the training photos at each size, made before the fork


def _work(job) -> None:
    folder, kind, start, stop, lr_side, seed, synthetic = job
    arrays = {
        k: np.lib.format.open_memmap(Path(folder) / f"{kind}.{k}.npy", mode="r+")
        for k in shapes(kind, lr_side)
    }
    for i in range(start, stop):
        for k, v in make_pair(_LEVELS, kind, i, lr_side, seed, synthetic).items():
            arrays[k][i] = v
    for a in arrays.values():
        a.flush()


def build(
    folder: Path,
    count: int,
    lr_side: int = 48,
    seed: int = 0,
    workers: int = 2,
    synthetic: float = SYNTHETIC,
    downscale: tuple[float, ...] = DOWNSCALE,
) -> Path:
    """Writes `<folder>/<kind>.<array>.npy` for both kinds, then `done` (an interrupted build restarts).
    The photos are resized once, shared out among the workers (when each worker made its own, 4 sizes
    cost every build a minute however many cores it had: a minute of a lent GPU's 15), then the workers,
    forked with them, make the pairs in chunks."""
    global _LEVELS
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "done").exists():
        return folder
    jobs = []
    for kind in KINDS:
        for k, shape in shapes(kind, lr_side).items():
            np.lib.format.open_memmap(
                folder / f"{kind}.{k}.npy", mode="w+", dtype=np.uint8, shape=(count, *shape)
            )
        chunk = 500
        jobs += [
            (str(folder), kind, a, min(a + chunk, count), lr_side, seed, synthetic)
            for a in range(0, count, chunk)
        ]
    started = time.time()
    _LEVELS = photo_levels(load_images(str(data_root() / "train")), downscale, workers)
    print(f"pairs: photos at {len(downscale)} sizes, {time.time() - started:.0f}s", file=sys.stderr)
    try:
        with mp.get_context("fork").Pool(workers) as pool:
            for n, _ in enumerate(pool.imap_unordered(_work, jobs), 1):
                print(f"pairs: {n}/{len(jobs)} chunks, {time.time() - started:.0f}s", file=sys.stderr)
    finally:
        _LEVELS = ()  # the photos at every size are hundreds of MB: not kept past the build
    (folder / "done").write_text(
        f"count={count} lr={lr_side} seed={seed} synthetic={synthetic} recipe={RECIPE} "
        f"downscale={','.join(f'{f:g}' for f in downscale)}\n"
    )
    return folder


def unusable(folder: Path) -> str | None:
    """Why the cache in `folder` cannot train (unfinished, or built by another recipe), else None."""
    if not (folder / "done").exists():
        return f"no finished pair cache in {folder} (python -m hvar.pairs --out {folder})"
    fields = dict(f.split("=", 1) for f in (folder / "done").read_text().split())
    recipe = int(fields.get("recipe", 1))  # caches before the field were recipe 1 (no light defects)
    if recipe != RECIPE:
        return (f"the pair cache in {folder} was built by recipe {recipe}, this code makes recipe {RECIPE}: "
                f"rebuild it (rm -r {folder}; python -m hvar.pairs --out {folder})")  # fmt: skip
    return None


class Pairs:
    """The cached pairs, memory-mapped: `batch(rng, n)` draws n pairs of each kind."""

    def __init__(self, folder: Path):
        if (why := unusable(folder)) is not None:
            raise FileNotFoundError(why)
        self.arrays = {
            kind: {
                k: np.load(folder / f"{kind}.{k}.npy", mmap_mode="r")
                for k in ("lr", *[f"t{s}" for s in scales])
            }
            for kind, scales in KINDS.items()
        }
        self.count = len(self.arrays["x4"]["lr"])

    def batch(self, rng: np.random.Generator, n: int) -> dict[str, dict[str, np.ndarray]]:
        """{kind: {array: uint8 n x H x W x 3}}, rows drawn without replacement, sorted (fast reads)."""
        out = {}
        for kind, arrays in self.arrays.items():
            idx = np.sort(rng.choice(self.count, n, replace=False))
            out[kind] = {k: a[idx] for k, a in arrays.items()}
        return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(".data/pairs"))
    ap.add_argument("--count", type=int, default=20000, help="pairs of each kind")
    ap.add_argument("--lr", type=int, default=48, help="LR side of every pair")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--synthetic", type=float, default=SYNTHETIC, help="share of smooth colour fields")
    ap.add_argument("--downscale", type=float, nargs="+", default=list(DOWNSCALE), metavar="F",
                    help="photo sizes to crop from, one drawn per crop (1: as taken)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.count < 1 or args.lr < 8 or not 0 <= args.synthetic <= 1:
        ap.error("--count must be >= 1, --lr >= 8 and --synthetic within [0, 1]")
    if not all(0 < f <= 1 for f in args.downscale):
        ap.error("--downscale factors must be within (0, 1]")
    if small := too_small(args.downscale, args.lr * max(int(k[1:]) for k in KINDS)):
        ap.error(
            f"--downscale {small:g} leaves no training photo large enough for an x4 crop of --lr {args.lr}"
        )
    build(args.out, args.count, args.lr, args.seed, args.workers, args.synthetic, tuple(args.downscale))


if __name__ == "__main__":
    main()
