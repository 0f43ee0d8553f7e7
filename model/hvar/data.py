"""Training crops and dev images, from `../shared/datasets` (`hvar.paths`; never downloaded).

65 photos is a small corpus, so training draws endless random crops (image chosen in proportion to its
area), with flips and 90-degree rotations, from images decoded once and kept in memory. Low-resolution
inputs are made on the fly by `hvar.degrade.make_lr` when asked (`lr_mode`), never read from disk.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hvar.degrade import DEGRADATIONS, make_lr
from hvar.paths import data_root, list_images

LR_MODES = (None, *DEGRADATIONS)
PAIR_MODES = (*DEGRADATIONS, "mixed")  # mixed: half of every batch each way


@functools.lru_cache(maxsize=4)
def load_images(folder: str) -> tuple[np.ndarray, ...]:
    """Every image under folder as uint8 HxWx3 RGB (grey expanded), decoded once per process."""
    return tuple(np.asarray(Image.open(p).convert("RGB")) for p in list_images(folder))


def dev_set(name: str) -> list[tuple[str, np.ndarray]]:
    """(stem, uint8 HxWx3) of a dev benchmark's HR images, e.g. name='Set5'."""
    return [
        (p.stem, np.asarray(Image.open(p).convert("RGB")))
        for p in list_images(data_root() / "dev" / name / "HR")
    ]


def uint8_to_tensor(img_HWC: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> float 3xHxW in [-1, 1]."""
    return (
        torch.from_numpy(np.array(img_HWC, dtype=np.uint8, copy=True))
        .permute(2, 0, 1)
        .float()
        .div(127.5)
        .sub(1.0)
    )


def tensor_to_uint8(x_3HW: torch.Tensor) -> np.ndarray:
    """float 3xHxW in [-1, 1] -> uint8 HxWx3 (rounded)."""
    x = x_3HW.detach().clamp(-1, 1).add(1).mul(127.5).round().byte()
    return x.permute(1, 2, 0).cpu().numpy()


def random_crop(images: tuple[np.ndarray, ...], crop: int, rng: np.random.Generator) -> np.ndarray:
    """One crop: image drawn in proportion to its area, random position, flip and 90-degree rotation."""
    ok = [im for im in images if min(im.shape[:2]) >= crop]
    areas = np.array([im.shape[0] * im.shape[1] for im in ok], dtype=np.float64)
    im = ok[rng.choice(len(ok), p=areas / areas.sum())]
    y = int(rng.integers(0, im.shape[0] - crop + 1))
    x = int(rng.integers(0, im.shape[1] - crop + 1))
    out = im[y : y + crop, x : x + crop]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.rot90(out, k=int(rng.integers(0, 4)))


class RandomCrops(torch.utils.data.IterableDataset):
    """Endless HR crops (float 3 x crop x crop in [-1, 1]); with `lr_mode`, (hr, lr) pairs where lr is
    crop/scale on a side. Deterministic for a given seed."""

    def __init__(
        self,
        crop: int,
        seed: int = 0,
        lr_mode: str | None = None,
        scale: int = 4,
        folder: str | Path | None = None,
    ):
        super().__init__()
        if lr_mode not in LR_MODES:
            raise ValueError(f"lr_mode must be one of {LR_MODES}, got {lr_mode!r}")
        self.crop, self.seed, self.lr_mode, self.scale = crop, seed, lr_mode, scale
        self.folder = str(folder or data_root() / "train")

    def __iter__(self) -> Iterator[torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
        images = load_images(self.folder)
        rng = np.random.default_rng(self.seed)
        while True:
            hr = random_crop(images, self.crop, rng)
            if self.lr_mode is None:
                yield uint8_to_tensor(hr)
            else:
                yield uint8_to_tensor(hr), uint8_to_tensor(make_lr(hr, self.scale, self.lr_mode, rng))


def batches(ds: RandomCrops, batch_size: int) -> Iterator:
    """Stack consecutive samples into batches (no worker processes: the CPU is busy training)."""
    it = iter(ds)
    while True:
        items = [next(it) for _ in range(batch_size)]
        if isinstance(items[0], tuple):
            yield tuple(torch.stack(parts) for parts in zip(*items, strict=True))
        else:
            yield torch.stack(items)


def lr_batches(crop: int, lr_mode: str, seed: int, batch: int, scale: int = 4) -> Iterator:
    """Endless (hr, lr) batches of HR crops and their LR made on the fly; `mixed` makes the first half
    of every batch by MATLAB bicubic and the second half by the realistic recipe."""
    if lr_mode not in PAIR_MODES:
        raise ValueError(f"lr_mode must be one of {PAIR_MODES}, got {lr_mode!r}")
    if lr_mode != "mixed":
        yield from batches(RandomCrops(crop, seed=seed, lr_mode=lr_mode, scale=scale), batch)
        return
    half = max(1, batch // 2)
    bic = batches(RandomCrops(crop, seed=seed, lr_mode="bicubic", scale=scale), half)
    real = batches(RandomCrops(crop, seed=seed + 1, lr_mode="realistic", scale=scale), batch - half)
    while True:
        (hb, lb), (hr, lr) = next(bic), next(real)
        yield torch.cat([hb, hr]), torch.cat([lb, lr])
