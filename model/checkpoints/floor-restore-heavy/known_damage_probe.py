"""What knowing the damage is worth to this floor. For every dev image and scale, the realistic recipe's
random choices for that image (kernels, resizes, noise kinds and levels, JPEG qualities: every draw but
the noise itself) are recorded, and the served floor's restorer is fine-tuned on training crops damaged
by exactly those choices (other photos, fresh noise), then scored on the image. The same fine-tune on
crops with the recipe's ordinary random damage (one per scale, for all images) is the control: what the
extra steps on realistic crops alone are worth. The difference between the two is what a floor of this
size gains from knowing how a photo was damaged; `ceiling_probe.py` asks the same of a linear filter.

Rows, PSNR on Y (x2 / x4 against the HR, `scale` px shaved; x1 against the clean LR, none shaved),
realistic LR with eval_sr's per-image seeds, every model through the runner's tiling:
  bicubic / input      MATLAB bicubic of the LR (x2, x4) or the LR itself (x1)
  served floor         hvar 2.5.0-floor's PyTorch weights (`floor.safetensors` here)
  tuned, any damage    the control: STEPS steps on crops with the recipe's random damage
  tuned, known damage  STEPS steps on crops with this image's own damage

Only the restorer learns (as 2.5.0 did), with x1's L1 against the clean crop; the upscaler is SPAN as
published. From model/ (about 65 minutes on 2 cores):

    .venv/bin/python checkpoints/floor-restore-heavy/known_damage_probe.py \
        > checkpoints/floor-restore-heavy/known-damage-probe.md
"""

import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hvar import eval as protocol
from hvar.data import load_images, random_crop
from hvar.degrade import Draws, bicubic_lr, degrade, make_lr, modcrop
from hvar.eval_sr import SRMethod
from hvar.floor import load_floor
from hvar.imresize import imresize_uint8
from hvar.paths import data_root, list_images
from hvar.train_floor import dihedral

STEPS, BATCH, POOL, LR_SIDE, LEARNING_RATE = 100, 16, 400, 48, 1e-4
HERE = Path(__file__).parent
DATASETS = ("Set5", "Set14")
torch.backends.nnpack.set_flags(False)
torch.set_num_threads(2)


def crops(scale: int, rng: np.random.Generator, damage: list | None) -> tuple[torch.Tensor, torch.Tensor]:
    """POOL training pairs (damaged LR, clean LR), N 3 48 48 in [0, 1]: `damage` replayed, or random."""
    images = load_images(str(data_root() / "train"))
    lrs, cleans = [], []
    for _ in range(POOL):
        hr = np.ascontiguousarray(random_crop(images, LR_SIDE * scale, rng))
        draws = Draws(rng, damage) if damage is not None else rng
        lrs.append(degrade(hr, scale, draws))
        if damage is not None:
            assert draws.exhausted(), "the replay left recorded choices unused"
        cleans.append(bicubic_lr(hr, scale))

    def tensor(a):
        return torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).float().div(255)

    return tensor(lrs), tensor(cleans)


def tuned(base, pairs: tuple[torch.Tensor, torch.Tensor], seed: int):
    """A copy of `base` whose restorer took STEPS Adam steps of x1's L1 on `pairs`."""
    model = copy.deepcopy(base).train()
    params = [p for n, p in model.named_parameters() if not n.startswith("upscaler.")]
    opt = torch.optim.Adam(params, LEARNING_RATE)
    gen = torch.Generator().manual_seed(seed)
    lr, clean = pairs
    for _ in range(STEPS):
        idx = torch.randperm(len(lr), generator=gen)[:BATCH]
        k = int(torch.randint(8, (1,), generator=gen))
        loss = F.l1_loss(model.restore(dihedral(lr[idx], k)), dihedral(clean[idx], k))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


def scores(model, lr: np.ndarray, hr: np.ndarray, clean: np.ndarray, scale: int) -> dict[str, float]:
    out = SRMethod(model).outputs(lr)
    return {"sr": protocol.psnr_y(out[scale], hr, shave=scale), "x1": protocol.psnr_y(out[1], clean, shave=0)}


def main() -> None:
    base = load_floor(HERE)
    started = time.time()
    results = []
    for scale in (2, 4):
        control = tuned(base, crops(scale, np.random.default_rng([1, scale]), None), seed=scale)
        for ds in DATASETS:
            for path in list_images(protocol.resolve_dataset(ds, None)[1]):
                hr = modcrop(protocol.load_image(path), scale)
                draws = Draws(protocol.image_rng(path.stem, scale, 0))
                lr = degrade(hr, scale, draws)
                assert np.array_equal(
                    lr, make_lr(hr, scale, "realistic", protocol.image_rng(path.stem, scale, 0))
                )
                pairs = crops(scale, np.random.default_rng([2, scale, len(results)]), draws.record)
                known = tuned(base, pairs, seed=len(results))
                clean = bicubic_lr(hr, scale)
                row = {
                    "dataset": ds, "name": path.stem, "scale": scale,
                    "bicubic": protocol.psnr_y(imresize_uint8(lr, scale), hr, shave=scale),
                    "input": protocol.psnr_y(lr, clean, shave=0),
                    "floor": scores(base, lr, hr, clean, scale),
                    "control": scores(control, lr, hr, clean, scale),
                    "known": scores(known, lr, hr, clean, scale),
                }  # fmt: skip
                results.append(row)
                psnrs = " ".join(f"{k} {row[k]['sr']:.2f}" for k in ("floor", "control", "known"))
                print(
                    f"{time.time() - started:5.0f}s x{scale} {ds} {path.stem}: {psnrs}",
                    file=sys.stderr,
                    flush=True,
                )
    (HERE / "known-damage-probe.json").write_text(json.dumps(results, indent=1))
    print(report(results, time.time() - started))


def report(results: list[dict], seconds: float) -> str:
    lines = [
        "# What knowing the damage is worth to the floor",
        "",
        f"`known_damage_probe.py` ({seconds / 60:.0f} min, 2 cores): the served floor's restorer tuned"
        f" {STEPS} steps of {BATCH} crops ({POOL} crops, Adam {LEARNING_RATE:g}) on the recipe's random"
        " damage (control) or on each image's own (known). PSNR-Y in dB, realistic LR, means over each set.",
        "",
        "| set | scale | bicubic | floor | tuned, any damage | tuned, known damage | known - control |"
        " input (x1) | floor x1 | control x1 | known x1 | known - control (x1) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for ds in DATASETS:
        for scale in (2, 4):
            rows = [r for r in results if r["dataset"] == ds and r["scale"] == scale]

            def mean(key, part=None, rows=rows):
                return float(np.mean([r[key] if part is None else r[key][part] for r in rows]))

            sr = [mean("bicubic"), mean("floor", "sr"), mean("control", "sr"), mean("known", "sr")]
            x1 = [mean("input"), mean("floor", "x1"), mean("control", "x1"), mean("known", "x1")]
            cells = [f"{v:.2f}" for v in sr] + [f"{sr[3] - sr[2]:+.2f}"]
            cells += [f"{v:.2f}" for v in x1] + [f"{x1[3] - x1[2]:+.2f}"]
            lines.append(f"| {ds} | x{scale} | " + " | ".join(cells) + " |")
    lines += ["", "Per image (x2 / x4 PSNR-Y over bicubic: floor, control, known):", ""]
    lines += ["| set | image | x2 floor | x2 control | x2 known | x4 floor | x4 control | x4 known |"]
    lines += ["| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for ds in DATASETS:
        for name in dict.fromkeys(r["name"] for r in results if r["dataset"] == ds):
            cells = []
            for scale in (2, 4):
                r = next(
                    r for r in results if r["name"] == name and r["scale"] == scale and r["dataset"] == ds
                )
                cells += [f"{r[k]['sr'] - r['bicubic']:+.2f}" for k in ("floor", "control", "known")]
            lines.append(f"| {ds} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
