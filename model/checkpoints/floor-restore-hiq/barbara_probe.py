"""Where x1 loses on Set14 at JPEG q90: the PSNR of the JPEG input and of x1 against the clean image, in RGB,
in Y and in chroma (RGB minus Y), for the three images the ladder says x1 makes worse; writes barbara's
input | x1 | clean to /tmp/barbara_q90.png. Scores the served model; from model/:

    .venv/bin/python checkpoints/floor-restore-hiq/barbara_probe.py
"""

import numpy as np
import torch
from PIL import Image

from hvar import eval as protocol
from hvar.degrade import bicubic_lr, modcrop
from hvar.eval_sr import SRMethod, ladder_rung, load_model, psnr_rgb
from hvar.metrics import psnr_y

torch.backends.nnpack.set_flags(False)
method = SRMethod(load_model("../gpu-runner/models/hvar", 2), 0.0, 0, None)


def chroma(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    return a - (a @ [0.299, 0.587, 0.114])[..., None]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a - b) ** 2)))


for name in ("barbara", "comic", "zebra"):
    path = protocol.resolve_dataset("Set14", None)[1] / f"{name}.png"
    clean = bicubic_lr(modcrop(protocol.load_image(path), 2), 2)
    lr = ladder_rung(clean, "jpeg90", protocol.image_rng(name, 1, 0))
    x1 = method.outputs(lr)[1]
    print(
        f"{name}: RGB input {psnr_rgb(lr, clean):.2f} x1 {psnr_rgb(x1, clean):.2f}"
        f" | Y input {psnr_y(lr, clean, 0):.2f} x1 {psnr_y(x1, clean, 0):.2f}"
        f" | chroma input {psnr(chroma(lr), chroma(clean)):.2f} x1 {psnr(chroma(x1), chroma(clean)):.2f}"
    )
    if name == "barbara":
        Image.fromarray(np.concatenate([lr, x1, clean], 1)).save("/tmp/barbara_q90.png")
