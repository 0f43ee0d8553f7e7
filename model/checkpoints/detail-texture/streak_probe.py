"""Are a detail decoder's additions streaks? The anisotropy of what x4 adds to the floor's x4.

The `lowpass` runs lowered NIQE by drawing vertical streaks. A streak varies across its width and not
along its length, so the added image's horizontal differences outweigh its vertical ones. For each source
this prints, over Set5 and Set14 at realistic LR, per image and their mean, `metrics.streakiness`: |log2(Eh
/ Ev)|, Eh and Ev the mean squares of the horizontal and vertical differences of Y(x4) - Y(floor's x4). 0:
as much detail across as along; 1: one direction twice the other's energy. The HR's own difference from
the floor is the detail wanted. Output: streak-probe.txt (7 min on 2 cores).

With --orientation it prints instead, for the demo's chelsea photo at realistic LR, the signed log2(Eh /
Ev) of each run's additions, for the photo as is and transposed (30 s). Detail that follows the content
changes sign with the photo; a pattern fixed in the decoder's own frame keeps it.

    cd model && .venv/bin/python checkpoints/detail-texture/streak_probe.py \
        checkpoints/detail-base runs/detail-lowpass-clean
    cd model && .venv/bin/python checkpoints/detail-texture/streak_probe.py --orientation \
        checkpoints/detail-base runs/detail-lowpass-clean
"""

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hvar.data import dev_set
from hvar.degrade import make_lr, modcrop
from hvar.detail import load_detail
from hvar.eval import image_rng
from hvar.eval_detail import upscale
from hvar.metrics import rgb_to_y, streakiness

PHOTO = Path(__file__).parents[3] / "worker/public/demo/examples/chelsea.jpg"


def signed_ratio(x4: np.ndarray, floor: np.ndarray) -> float:
    """log2(Eh / Ev) of Y(x4) - Y(floor), 4 px shaved: > 0 more change across (vertical streaks)."""
    added = (rgb_to_y(x4) - rgb_to_y(floor))[4:-4, 4:-4]
    return float(np.log2(np.mean(np.diff(added, axis=1) ** 2) / np.mean(np.diff(added, axis=0) ** 2)))


def orientation(runs: list[str]) -> None:
    hr = modcrop(np.asarray(Image.open(PHOTO).convert("RGB")), 4)
    lr = make_lr(hr, 4, "realistic", image_rng(PHOTO.stem, 4, 0))
    for run in runs:
        model = load_detail(run)
        for name, flip in (("as is", lambda a: a), ("transposed", lambda a: a.transpose(1, 0, 2).copy())):
            floor = upscale(model, flip(lr), flip(hr), "floor-alone", None, PHOTO.stem)[2]
            ratios = {"HR image": signed_ratio(flip(hr), floor)}
            for source in ("hr", "floor"):
                x4 = upscale(model, flip(lr), flip(hr), source, None, PHOTO.stem)[2]
                ratios[f"{source} tokens"] = signed_ratio(x4, floor)
            print(f"{run} | chelsea {name} | " + " | ".join(f"{k} {v:+.2f}" for k, v in ratios.items()))


def main(runs: list[str]) -> None:
    models = {run: load_detail(run) for run in runs}
    for name in ("Set5", "Set14"):
        rows: dict[str, list[float]] = {}
        for stem, hr in dev_set(name):
            hr = modcrop(hr, 4)
            lr = make_lr(hr, 4, "realistic", image_rng(stem, 4, 0))
            any_model = next(iter(models.values()))
            floor = upscale(any_model, lr, hr, "floor-alone", None, stem)[2]
            x4s = {
                "HR image (wanted)": hr,
                "unsharp mask": upscale(any_model, lr, hr, "floor-sharpened", None, stem)[2],
            }
            for run, model in models.items():
                for source in ("hr", "floor"):
                    x4s[f"{run}: {source} tokens"] = upscale(model, lr, hr, source, None, stem)[2]
            for source, x4 in x4s.items():
                rows.setdefault(source, []).append(streakiness(x4, floor, shave=4))
        for source, values in rows.items():
            per_image = " ".join(f"{v:.2f}" for v in values)
            print(f"{name} | {source} | mean {np.mean(values):.2f} | {per_image}", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(2)
    torch.backends.nnpack.set_flags(False)
    if sys.argv[1:2] == ["--orientation"]:
        orientation(sys.argv[2:])
    else:
        main(sys.argv[1:])
