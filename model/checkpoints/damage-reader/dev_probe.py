"""Does the taught reader read the dev sets' realistic damage? A ridge read-out of the frozen reader's
features is fitted on 480 held-out cache pairs (with the floor's defects, as `hvar.damage` teaches), then
scored by R^2 on: those pairs; the cache's degraded column alone; fresh realistic crops of the training
photos; Set5 and Set14's realistic LR, whole and in 48 px crops. The means of the targets show why it
fails there: on the training crops the recipe mostly adds noise power (bands > 0), on the benchmarks'
denser detail it mostly takes detail away (bands < 0), which the reader had seldom seen
(`../floor-restore-dense/detail-density.md`). From model/ (about 1 minute each):

    .venv/bin/python checkpoints/damage-reader/dev_probe.py > checkpoints/damage-reader/dev-probe.txt
    .venv/bin/python checkpoints/damage-reader/dev_probe.py READER_RUN PAIRS   # another reader, its cache
"""

import sys
from pathlib import Path

import numpy as np
import torch

from hvar import eval as protocol
from hvar.damage import HELD_OUT, NUMBERS, batch, damage
from hvar.data import load_images, random_crop
from hvar.degrade import bicubic_lr, make_lr, modcrop
from hvar.floor import DamageReader, load_reader
from hvar.pairs import Pairs
from hvar.paths import data_root, list_images

HERE = Path(__file__).parent
torch.set_num_threads(2)


def tensor(a: np.ndarray) -> torch.Tensor:
    a = np.repeat(a[..., None], 3, 2) if a.ndim == 2 else a
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float() / 255


def r2(pred: torch.Tensor, target: torch.Tensor) -> str:
    return " ".join(
        f"{n} {1 - float(((pred[:, j] - target[:, j]) ** 2).mean() / target[:, j].var()):+.2f}"
        for j, n in enumerate(NUMBERS)
    )


@torch.no_grad()
def main() -> None:
    reader = DamageReader(32)
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    cache = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(".data/pairs")
    reader.load_state_dict(load_reader(folder))
    reader.eval()
    pairs = Pairs(cache)
    print(f"reader {folder}, read-out fitted on {cache}")
    held = np.arange(pairs.count - HELD_OUT, pairs.count)
    rng = np.random.default_rng(5)
    feats, targets = zip(
        *[(reader(lr), t) for lr, t in (batch(pairs, held[i::8][:60], rng) for i in range(8))], strict=True
    )
    f, t = torch.cat(feats).double(), torch.cat(targets).double()

    def design(f):
        return torch.cat([f.double(), torch.ones(len(f), 1, dtype=torch.double)], 1)

    X = design(f)
    W = torch.linalg.solve(X.T @ X + 1e-2 * torch.eye(X.shape[1], dtype=torch.double), X.T @ t)
    rows = {"held-out cache pairs (the fit)": (f, t)}
    lrs = [
        torch.from_numpy(pairs.arrays[k]["lr"][held]).permute(0, 3, 1, 2).float() / 255 for k in ("x2", "x4")
    ]
    cleans = [
        torch.from_numpy(pairs.arrays[k]["t1"][held]).permute(0, 3, 1, 2).float() / 255 for k in ("x2", "x4")
    ]
    lr, clean = torch.cat(lrs), torch.cat(cleans)
    rows["cache, its LR column alone"] = (reader(lr), damage(lr, clean))
    photos = load_images(str(data_root() / "train"))
    g = np.random.default_rng(11)
    crops = []
    for i in range(200):
        scale = 2 + 2 * (i % 2)
        hr = np.ascontiguousarray(random_crop(photos, 48 * scale, g))
        crops.append((tensor(make_lr(hr, scale, "realistic", g)), tensor(bicubic_lr(hr, scale))))
    rows["training photos, realistic crops"] = (
        torch.cat([reader(a) for a, _ in crops]),
        torch.cat([damage(a, b) for a, b in crops]),
    )
    whole, tiles = [], []
    for ds in ("Set5", "Set14"):
        for path in list_images(protocol.resolve_dataset(ds, None)[1]):
            for scale in (2, 4):
                hr = modcrop(protocol.load_image(path), scale)
                a = tensor(make_lr(hr, scale, "realistic", protocol.image_rng(path.stem, scale, 0)))
                b = tensor(bicubic_lr(hr, scale))
                whole.append((a, b))
                corners = [
                    (y, x) for y in range(0, a.shape[2] - 47, 48) for x in range(0, a.shape[3] - 47, 48)
                ]
                tiles += [
                    (a[..., y : y + 48, x : x + 48], b[..., y : y + 48, x : x + 48]) for y, x in corners
                ]
    for name, items in (
        ("Set5 + Set14 realistic, whole images", whole),
        ("Set5 + Set14 realistic, 48 px crops", tiles),
    ):
        rows[name] = (torch.cat([reader(a) for a, _ in items]), torch.cat([damage(a, b) for a, b in items]))
    for name, (f, t) in rows.items():
        pred = design(f) @ W
        print(f"{name} (n={len(t)})\n  R^2     {r2(pred, t.double())}")
        print("  target  " + " ".join(f"{v:+.2f}" for v in t.double().mean(0).tolist()))
        print("  read    " + " ".join(f"{v:+.2f}" for v in pred.mean(0).tolist()))
    print(f"\nnumbers: {' '.join(NUMBERS)} (means of the targets and of the read-out on each row)")


if __name__ == "__main__":
    main()
