"""seams-stride.png: greedy x4 of scikit-image's CC0 coffee photo (realistic LR), sub-tiles side by side
(stride 32) and overlapping (stride 24), each with its difference from its own floor, x4 around grey.

    cd model && .venv/bin/python checkpoints/detail-export/probes/seams_figure.py
"""

import dataclasses

import numpy as np
import torch

from hvar import eval as protocol
from hvar.degrade import make_lr, modcrop
from hvar.detail import load_detail
from hvar.detail_sr import DetailSR
from hvar.eval_sr import upscale
from hvar.figure import column, panel, row
from hvar.sr import load_hvar

CROP = 256  # HR px


class FloorOnly(torch.nn.Module):
    """The detail path's own floor on the same 128 px tiles: what the differences are taken from."""

    tile, tokens, overlap = 128, 0, 32

    def __init__(self, detail):
        super().__init__()
        self.detail = detail

    def forward(self, lr01, noise, temperature):
        return [(g + 1) / 2 for g in self.detail.floor_outputs(lr01)]


torch.set_num_threads(2)
hr = modcrop(protocol.load_image("../../shared/datasets/train/python3-skimage/coffee.jpg"), 4)
lr = make_lr(hr, 4, "realistic", protocol.image_rng("coffee", 4, 0))
detail, transformer = load_detail("checkpoints/detail-base"), load_hvar("runs/hvar-floor-hint2")
drawing = dataclasses.replace(transformer.cfg.transformer, top_k=64)
transformer.cfg = dataclasses.replace(transformer.cfg, transformer=drawing)
x4 = {
    s: upscale(DetailSR(detail, transformer, 128, (4,), s).eval(), lr, 0.0, overlap=32)[4] for s in (32, 24)
}
floor = upscale(FloorOnly(detail).eval(), lr, 0.0, overlap=32)[4]
y, x = hr.shape[0] // 2 - CROP // 2, hr.shape[1] // 2 - CROP // 2


def crop(im):
    return im[y : y + CROP, x : x + CROP]


def difference(im):
    return np.clip(128 + 4 * (im.astype(int) - floor.astype(int)), 0, 255).astype(np.uint8)


top = row([panel(crop(floor), "floor x4"), *(panel(crop(x4[s]), f"detail, stride {s}") for s in x4)])
bottom = row(
    [panel(crop(hr), "HR"), *(panel(crop(difference(x4[s])), f"stride {s} - floor, x4") for s in x4)]
)
column([top, bottom]).save("checkpoints/detail-export/seams-stride.png")
