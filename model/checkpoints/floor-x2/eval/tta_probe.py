"""Would a self-ensemble lift the served floor? The model run on 2 or 8 flipped / transposed views of
each LR, the outputs turned back and averaged: the whole model, or the restorer alone (x1 averaged, then
upscaled once). Every colour image of Set5 / Set14, clean, JPEG q75 and realistic LR, whole images in
PyTorch (no tiles), at the default clean-up 0.75; mean PSNR-Y of x_s.

    cd model && PYTHONPATH=. .venv/bin/python checkpoints/floor-x2/eval/tta_probe.py > tta-probe.txt

15 minutes on 2 cores. Result (tta-probe.txt): the whole model on 8 views gains +0.10 / +0.13 dB on clean
LR (x2 / x4), +0.08 / +0.07 on JPEG, +0.02 / +0.04 on realistic, for 8x the work; on 2 views about half
that for 2x; the restorer alone at most +0.05. Not worth a served mode.
"""

import numpy as np
import torch

from hvar import eval as protocol
from hvar.degrade import make_lr, modcrop
from hvar.floor import load_floor
from hvar.metrics import psnr_y
from hvar.paths import list_images

CLEANUP = torch.tensor([0.75])
# (flip left-right, flip up-down, transpose): the 8 symmetries of the square, the first 2 for "x2"
VIEWS = [(h, v, t) for t in (False, True) for v in (False, True) for h in (False, True)]
VARIANTS = [("plain", 1, False), ("restorer x2", 2, True), ("restorer x8", 8, True),
            ("whole x2", 2, False), ("whole x8", 8, False)]  # fmt: skip


def view(x: torch.Tensor, op: tuple[bool, bool, bool], back: bool = False) -> torch.Tensor:
    h, v, t = op
    if back and t:
        x = x.transpose(-1, -2)
    x = x.flip(-1) if h else x
    x = x.flip(-2) if v else x
    return x.transpose(-1, -2) if t and not back else x


@torch.no_grad()
def outputs(model, lr: np.ndarray, k: int, restorer_only: bool) -> dict[int, np.ndarray]:
    x = torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255  # 1 3 H W
    ops = VIEWS[:k]
    if restorer_only:
        x1 = sum(view(model.restore(view(x, op), cleanup=CLEANUP), op, back=True) for op in ops) / k
        outs = (x1, *model.upscaler.upsample(model.upscaler.features(x1.clamp(0, 1))))
    else:
        runs = [[view(o, op, back=True) for o in model(view(x, op), cleanup=CLEANUP)] for op in ops]
        outs = [sum(r[i] for r in runs) / k for i in range(3)]
    images = [(o[0].clamp(0, 1).permute(1, 2, 0) * 255).round().byte().numpy() for o in outs]  # H W 3
    return dict(zip((1, 2, 4), images, strict=True))


def main() -> None:
    torch.set_num_threads(2)
    torch.backends.nnpack.set_flags(False)
    model = load_floor("checkpoints/floor-x2").eval()
    scores: dict[tuple, list[float]] = {}
    for ds in ("Set5", "Set14"):
        for path in list_images(protocol.resolve_dataset(ds, None)[1]):
            for deg in ("bicubic", "realistic", "jpeg75"):
                for scale in (2, 4):
                    hr = modcrop(protocol.load_image(path), scale)
                    if hr.ndim == 2:
                        continue
                    rng = protocol.image_rng(path.stem, scale, 0) if deg == "realistic" else None
                    lr = make_lr(hr, scale, deg, rng)
                    for name, k, restorer_only in VARIANTS:
                        sr = outputs(model, lr, k, restorer_only)[scale]
                        scores.setdefault((deg, scale, name), []).append(psnr_y(sr, hr, shave=scale))
    for (deg, scale, name), v in sorted(scores.items()):
        print(deg, scale, name, round(float(np.mean(v)), 3))


if __name__ == "__main__":
    main()
