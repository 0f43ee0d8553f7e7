"""How much fine detail the floor's training crops hold next to the dev sets'. Median over 48 px clean LR
crops of log10(1 + mean power) of Y in each of `hvar.damage`'s six radial bands (cycles per px), for crops
of the training photos as taken, at 1/2, 1/3, 1/4 and 1/5 of their size, of the pair caches, and of Set5 and
Set14. From model/ (about 2 minutes):

    .venv/bin/python checkpoints/floor-restore-dense/detail_density.py \
        > checkpoints/floor-restore-dense/detail-density.md
"""

from pathlib import Path

import numpy as np
import torch

from hvar import eval as protocol
from hvar.damage import BANDS, _power, _radius
from hvar.data import load_images, random_crop
from hvar.degrade import bicubic_lr
from hvar.pairs import Pairs, photo_levels
from hvar.paths import data_root, list_images

SIDE, CROPS = 48, 400
CACHES = {
    "cache as taken (.data/pairs)": Path(".data/pairs"),
    "cache --downscale 1 0.5 0.33 0.25": Path(".data/pairs-dense"),
    "cache --downscale 0.5 0.33 0.25 0.2": Path(".data/pairs-denser"),
}


def bands(crops: list[np.ndarray]) -> list[float]:
    y = torch.from_numpy(np.stack([c.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) for c in crops]))
    p, r = _power(y.float()), _radius(SIDE, SIDE)
    edges = zip(BANDS[:-1], BANDS[1:], strict=True)
    return [float(torch.log10(p[:, (r >= lo) & (r < hi)].mean(1) + 1).median()) for lo, hi in edges]


def main() -> None:
    rng = np.random.default_rng(0)
    photos = load_images(str(data_root() / "train"))
    head = " | ".join(f"{lo:g}-{hi:g}" for lo, hi in zip(BANDS[:-1], BANDS[1:], strict=True))
    print("# Fine detail in the training crops and the dev sets\n")
    print("`detail_density.py`: median over 48 px clean LR crops of log10(1 + mean power of Y) per band")
    print("(cycles per px); one more is 10x the power.\n")
    for scale in (2, 4):
        print(f"\n## x{scale} crops (HR {SIDE * scale} px)\n\n| crops | {head} |\n|---|" + "---|" * 6)
        rows = {}
        for f in (1, 0.5, 0.33, 0.25, 0.2):
            level = photo_levels(photos, (f,))[0]
            crops = [
                bicubic_lr(np.ascontiguousarray(random_crop(level, SIDE * scale, rng)), scale)
                for _ in range(CROPS)
            ]
            rows[f"training photos at {f:g}"] = bands(crops)
        for name, folder in CACHES.items():
            if folder.is_dir():
                t1 = Pairs(folder).arrays[f"x{scale}"]["t1"]
                rows[name] = bands(list(t1[rng.choice(len(t1), CROPS, replace=False)]))
        dev = []
        for ds in ("Set5", "Set14"):
            for path in list_images(protocol.resolve_dataset(ds, None)[1]):
                hr = protocol.load_image(path)
                hr = np.repeat(hr[..., None], 3, 2) if hr.ndim == 2 else hr
                dev += [
                    bicubic_lr(np.ascontiguousarray(random_crop((hr,), SIDE * scale, rng)), scale)
                    for _ in range(20)
                ]
        rows["Set5 + Set14"] = bands(dev)
        for name, v in rows.items():
            print(f"| {name} | " + " | ".join(f"{x:.2f}" for x in v) + " |")


if __name__ == "__main__":
    main()
