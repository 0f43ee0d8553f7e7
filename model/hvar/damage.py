"""Teach the floor's damage reader (`floor.DamageReader`) to measure how a photo was damaged, from the
photo alone.

A blind restorer must guess from about 20 LR px how a photo was damaged; told the damage, the same network
does better (`checkpoints/floor-restore-heavy/known-damage-probe.md`). A reading trained only through the
restorer's loss learned to tell photos apart instead (`checkpoints/floor-restore-context/film-probe.md`).
So the reader first learns on its own, on the cached pairs (`hvar.pairs`, with the floor's defects on the
clean ones, `train_floor.with_defects`), where the clean LR is known and the damage can be measured:

    damage(lr, clean): 8 numbers, 0 for a clean pair
      6  log of the LR's power over the clean LR's in radial frequency bands of Y (blur < 0, noise > 0)
      1  the same for Cb and Cr above BANDS[2] (colour noise, chroma subsampling)
      1  log(1 + mean |lr - clean| in levels): how much was done
    reader(lr) -> linear head -> 8 numbers; mean squared error against damage(lr, clean), standardized

The held-out check is R^2 of each number on pairs the reader never saw (1: read exactly, 0: no better
than the mean).

    python -m hvar.damage --out runs/damage --minutes 10
    python -m hvar.train_floor --init checkpoints/floor-restore-heavy --preset cascade-context \\
        --damage-reader runs/damage --restore-only ...   # the floor, told the damage
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

from hvar import training
from hvar.floor import READER_FILE, DamageReader
from hvar.pairs import KINDS, Pairs, unusable
from hvar.train_floor import to_tensors, with_defects

BANDS = (0.04, 0.08, 0.12, 0.18, 0.26, 0.36, 0.5)  # cycles per px: the edges of the 6 bands of Y
NUMBERS = ("y1", "y2", "y3", "y4", "y5", "y6", "chroma", "amount")
EPS = 1e-4  # power floor: a flat crop's empty band reads as no change, not as log(0)
HELD_OUT = 500  # the cache's last pairs of each kind are never trained on
SHARES = {"light": 0.2, "jpeg": 0.45, "jpeg_quality": (60, 100)}  # the shipped floor's (2.5.0) defects


def _power(x_BHW: torch.Tensor) -> torch.Tensor:
    """|FFT|^2 of each Hann-windowed, mean-removed crop: B H W."""
    h, w = x_BHW.shape[-2:]
    window = torch.outer(torch.hann_window(h, periodic=False), torch.hann_window(w, periodic=False))
    return torch.fft.fft2((x_BHW - x_BHW.mean(dim=(1, 2), keepdim=True)) * window).abs() ** 2


def _radius(h: int, w: int) -> torch.Tensor:
    return torch.sqrt(torch.fft.fftfreq(h)[:, None] ** 2 + torch.fft.fftfreq(w)[None, :] ** 2)  # H W


def damage(lr_B3HW: torch.Tensor, clean_B3HW: torch.Tensor) -> torch.Tensor:
    """The 8 numbers (`NUMBERS`) of each pair, B 8; [0, 1] RGB in."""

    def ycbcr(x):
        r, g, b = x.unbind(1)
        y = 0.299 * r + 0.587 * g + 0.114 * b
        return y, torch.cat([b - y, r - y], dim=-1)  # B H W, B H 2W (chroma side by side)

    (y_lr, c_lr), (y_cl, c_cl) = ycbcr(lr_B3HW), ycbcr(clean_B3HW)
    p_lr, p_cl = _power(y_lr), _power(y_cl)
    r = _radius(*y_lr.shape[-2:])
    out = []
    for lo, hi in zip(BANDS[:-1], BANDS[1:], strict=True):
        band = (r >= lo) & (r < hi)
        out.append(torch.log((p_lr[:, band].mean(1) + EPS) / (p_cl[:, band].mean(1) + EPS)))
    pc_lr, pc_cl = _power(c_lr), _power(c_cl)
    high = _radius(*c_lr.shape[-2:]) >= BANDS[2]
    out.append(torch.log((pc_lr[:, high].mean(1) + EPS) / (pc_cl[:, high].mean(1) + EPS)))
    out.append(torch.log1p((lr_B3HW - clean_B3HW).abs().mean(dim=(1, 2, 3)) * 255))
    return torch.stack(out, dim=1)


class Measure(nn.Module):
    """The reader and the linear head that reads the 8 numbers off it (the head is not kept)."""

    def __init__(self, width: int):
        super().__init__()
        self.reader = DamageReader(width)
        self.head = nn.Linear(width, len(NUMBERS))

    def forward(self, lr01_B3HW: torch.Tensor) -> torch.Tensor:
        return self.head(self.reader(lr01_B3HW))  # B 8, standardized


def batch(pairs: Pairs, rows: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(lr, damage) of the given rows of each kind, the floor's defects on the clean pairs, one turn."""
    drawn = {kind: {k: pairs.arrays[kind][k][rows] for k in ("lr", "t1")} for kind in KINDS}
    with_defects(drawn, rng, 0.0, SHARES["light"], SHARES["jpeg"], SHARES["jpeg_quality"])
    t = to_tensors(drawn, int(rng.integers(8)))
    lr, clean = (torch.cat([t[kind][k] for kind in KINDS]) for k in ("lr", "t1"))
    return lr, damage(lr, clean)


@torch.no_grad()
def r_squared(
    model: Measure, lr: torch.Tensor, target: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> dict[str, float]:
    """R^2 of each number on (lr, target): 1 - its squared error over its variance."""
    err = (model(lr) * std + mean - target) ** 2
    return {
        n: round(1 - float(e / v), 3) for n, e, v in zip(NUMBERS, err.mean(0), target.var(0), strict=True)
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pairs", type=Path, default=Path(".data/pairs"), help="hvar.pairs cache")
    ap.add_argument("--width", type=int, default=32, help="the reader's width (FloorConfig.context)")
    ap.add_argument("--batch-size", type=int, default=64, help="pairs of each kind per step")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--minutes", type=float, default=0.0, help="stop after this long (0: steps alone)")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--held-out", type=int, default=HELD_OUT, help="the cache's last pairs of each kind")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    args = ap.parse_args(argv)
    if min(args.width, args.batch_size, args.steps, args.eval_every, args.held_out) < 1 or args.minutes < 0:
        ap.error("--width, --batch-size, --steps, --eval-every and --held-out must be >= 1, --minutes >= 0")
    if (args.out / READER_FILE).exists():
        ap.error(f"--out: {args.out} already holds a reader; choose another folder")
    if (why := unusable(args.pairs)) is not None:
        ap.error(f"--pairs: {why}")
    pairs = Pairs(args.pairs)
    if pairs.count < args.held_out + args.batch_size:
        ap.error(f"--pairs holds {pairs.count} pairs of each kind: too few for --held-out and --batch-size")
    training.set_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.time()
    trained_rows = pairs.count - args.held_out
    held_lr, held_damage = batch(
        pairs, np.arange(trained_rows, pairs.count), np.random.default_rng(args.seed + 1)
    )
    mean, std = held_damage.mean(0), held_damage.std(0) + 1e-3  # the scale the head answers in
    model = Measure(args.width)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    last = {}
    with (args.out / "metrics.jsonl").open("w") as metrics:
        for step in range(1, args.steps + 1):
            training.set_learning_rate(opt, training.learning_rate(step, args.lr, 100, step / args.steps))
            lr, target = batch(pairs, np.sort(rng.choice(trained_rows, args.batch_size, replace=False)), rng)
            loss = F.mse_loss(model(lr), (target - mean) / std)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            out_of_time = args.minutes and time.time() - started > 60 * args.minutes
            if step % args.eval_every == 0 or step == args.steps or out_of_time:
                last = {"step": step, "loss": round(float(loss.detach()), 4),
                        "r2_held_out": r_squared(model, held_lr, held_damage, mean, std),
                        "seconds": round(time.time() - started, 1)}  # fmt: skip
                metrics.write(json.dumps(last) + "\n")
                metrics.flush()
                print(last, file=sys.stderr, flush=True)
            if out_of_time:
                break
    save_file({k: v.contiguous() for k, v in model.reader.state_dict().items()}, args.out / READER_FILE)
    info = {"command": "python -m hvar.damage " + " ".join(argv if argv is not None else sys.argv[1:]),
            "width": args.width, "threads": torch.get_num_threads(), "held_out_pairs": len(held_lr),
            "last": last}  # fmt: skip
    (args.out / "training.json").write_text(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
