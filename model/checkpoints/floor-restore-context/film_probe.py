"""Is the damage reading used? For each Set5 image at x4, clean and with realistic damage, the size of the
scale (|gamma|) and shift (|beta|) that `DegradationContext` gives each restorer block, next to the size
of the features they act on. A reading that tells damage apart gives one image different values clean
and damaged. film-probe.md was written when the reading read conv_1's features; it reads the LR since
`DamageReader`. From model/, on a run of `--preset cascade-context`:

    .venv/bin/python checkpoints/floor-restore-context/film_probe.py runs/restore-context
"""

import sys

import torch

from hvar import eval as protocol
from hvar.degrade import make_lr, modcrop
from hvar.floor import load_floor
from hvar.paths import list_images

model = load_floor(sys.argv[1])
_, folder = protocol.resolve_dataset("Set5", None)
print("| image | LR | mean abs gamma | max abs gamma | mean abs beta | mean abs feature |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for path in list_images(folder):
    hr = modcrop(protocol.load_image(path), 4)
    films = {}
    for degradation in ("bicubic", "realistic"):
        lr = make_lr(hr, 4, degradation, protocol.image_rng(path.stem, 4, 0))
        x = torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            f0 = model.conv_1((x - model.mean) * 255)  # the features the first block's FiLM acts on
            film = model.context(x)[0, :, :, :, 0, 0]  # blocks 2 C
        films[degradation] = film
        gamma, beta = film[:, 0].abs(), film[:, 1].abs()
        print(f"| {path.stem} | {degradation} | {gamma.mean():.4f} | {gamma.max():.3f} | {beta.mean():.4f} | "
              f"{f0.abs().mean():.2f} |")  # fmt: skip
    gap = (films["bicubic"] - films["realistic"]).abs().mean()
    print(f"| {path.stem} | clean vs damaged: mean abs difference | {gap:.4f} | | | |")
