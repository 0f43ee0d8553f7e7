"""How much does NIQE reward high frequencies that are not detail? The floor's realistic x4 with white
Gaussian noise of a few grey levels added (fixed seed), on Set5 and Set14: PSNR-Y and NIQE.

    cd model && .venv/bin/python checkpoints/detail-texture/niqe_noise_probe.py

The LR is eval_detail's (the realistic recipe with the seed hvar.eval fixes per image).
"""

from pathlib import Path

import numpy as np
import torch

from hvar import metrics
from hvar.data import dev_set
from hvar.degrade import make_lr, modcrop
from hvar.detail import load_detail
from hvar.eval import image_rng
from hvar.eval_detail import upscale
from hvar.niqe import niqe

SIGMAS = (0, 1, 2, 4, 8)  # grey levels (of 255)
torch.set_num_threads(2)
torch.backends.nnpack.set_flags(False)
model = load_detail(Path("checkpoints/detail-base")).eval()  # only its floor is used
print("set | noise sigma (grey levels) | x4 PSNR-Y | x4 NIQE")
for name in ("Set5", "Set14"):
    rows = {s: ([], []) for s in SIGMAS}
    for stem, hr in dev_set(name):
        hr = modcrop(hr, 4)
        lr = make_lr(hr, 4, "realistic", image_rng(stem, 4, 0))
        x4 = upscale(model, lr, hr, "floor-alone", None, stem)[2].astype(np.float64)
        noise = np.random.default_rng(0).standard_normal(x4.shape)
        for s in SIGMAS:
            noisy = np.clip(np.round(x4 + s * noise), 0, 255).astype(np.uint8)
            rows[s][0].append(metrics.psnr_y(noisy, hr, shave=4))
            rows[s][1].append(niqe(noisy))
    for s, (p, q) in rows.items():
        print(f"{name} | {s} | {np.mean(p):.2f} | {np.mean(q):.2f}")
