"""Are a detail decoder's additions streaks? The anisotropy of what x4 adds to the floor's x4.

The `lowpass` runs lowered NIQE by drawing vertical streaks. A streak varies across its width and not
along its length, so the added image's horizontal differences outweigh its vertical ones. For each source
this prints, over Set5 and Set14 at realistic LR, per image and their mean, `metrics.streakiness`: |log2(Eh
/ Ev)|, Eh and Ev the mean squares of the horizontal and vertical differences of Y(x4) - Y(floor's x4). 0:
as much detail across as along; 1: one direction twice the other's energy. The HR's own difference from
the floor is the detail wanted. Output: streak-probe.txt (7 min on 2 cores).

    cd model && .venv/bin/python checkpoints/detail-texture/streak_probe.py \
        checkpoints/detail-base runs/detail-lowpass-clean
"""

import sys

import numpy as np
import torch

from hvar.data import dev_set
from hvar.degrade import make_lr, modcrop
from hvar.detail import load_detail
from hvar.eval import image_rng
from hvar.eval_detail import upscale
from hvar.metrics import streakiness


def main(runs: list[str]) -> None:
    torch.set_num_threads(2)
    torch.backends.nnpack.set_flags(False)
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
    main(sys.argv[1:])
