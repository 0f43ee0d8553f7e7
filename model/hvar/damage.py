"""Teach the floor's damage reader (`floor.DamageReader`) to tell damages apart rather than photos.

A blind restorer must guess from about 20 LR px how a photo was damaged; told the damage, the same
network does better (`checkpoints/floor-restore-heavy/known-damage-probe.md`). A reading trained only
through the restorer's loss learns to tell photos apart instead (`floor-restore-context/film-probe.md`).
So the reader learns first on its own, from pairs that differ in everything but the damage:

    pair i: two crops of training photos, one damage (`degrade.Draws`: drawn on the first crop, replayed on
            the second with fresh noise): the realistic recipe (60%) or one light defect (40%), x2 or x4
            (1/32 of the pairs: no damage at all, the clean LR)
    reader -> head -> unit vectors; InfoNCE over the batch: each crop must find its partner's among all

What two crops share is then only their damage. The held-out check is the same task on pairs never seen:
`top1`, the share of crops whose nearest other crop is their partner (chance: 1 / `--held-out`).

    python -m hvar.damage --out runs/damage --width 32 --minutes 10
    python -m hvar.train_floor --init checkpoints/floor-restore-heavy --preset cascade-context \\
        --damage-reader runs/damage --restore-only ...   # the floor, told the damage
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from hvar import training
from hvar.data import load_images, random_crop
from hvar.degrade import Draws, bicubic_lr, degrade, light
from hvar.floor import DamageReader
from hvar.pairs import LIGHT
from hvar.paths import data_root

LR_SIDE = 48
CLEAN = 1 / 32  # share of pairs without damage: a clean photo must read as clean
TEMPERATURE = 0.1  # InfoNCE's
READER_FILE = "reader.safetensors"


def same_damage_pair(
    images: tuple[np.ndarray, ...], rng: np.random.Generator, lr_side: int = LR_SIDE
) -> np.ndarray:
    """2 x lr_side x lr_side x 3 uint8: the LR of two random crops with one damage (or none)."""
    scale = int(rng.choice((2, 4)))
    hr = [np.ascontiguousarray(random_crop(images, lr_side * scale, rng)) for _ in "ab"]
    clean = [bicubic_lr(x, scale) for x in hr]
    u = rng.random()
    if u < CLEAN:
        return np.stack(clean)
    first = Draws(rng)
    if u < CLEAN + LIGHT * (1 - CLEAN):
        return np.stack([light(clean[0], first), light(clean[1], Draws(rng, first.record))])
    return np.stack([degrade(hr[0], scale, first), degrade(hr[1], scale, Draws(rng, first.record))])


def _chunk(job: tuple[int, int, int, int]) -> np.ndarray:
    seed, start, stop, lr_side = job
    images = load_images(str(data_root() / "train"))
    pairs = [same_damage_pair(images, np.random.default_rng([seed, i]), lr_side) for i in range(start, stop)]
    return np.stack(pairs)


def make_pairs(count: int, seed: int, workers: int = 2, lr_side: int = LR_SIDE) -> np.ndarray:
    """count x 2 x lr_side x lr_side x 3 uint8; pair i fixed by (seed, i), whatever the number of workers."""
    jobs = [(seed, a, min(a + 250, count), lr_side) for a in range(0, count, 250)]
    with mp.get_context("fork").Pool(workers) as pool:
        return np.concatenate(pool.map(_chunk, jobs))


class Embedder(nn.Module):
    """The reader and the projection head InfoNCE trains through (the head is not kept)."""

    def __init__(self, width: int):
        super().__init__()
        self.reader = DamageReader(width)
        self.head = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, lr01_B3HW: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.reader(lr01_B3HW)), dim=1)  # B W, unit vectors


def to_tensor(pairs: np.ndarray, k: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The two crops of every pair (N 3 H W each, [0, 1]), both turned by the same dihedral k: a turned
    anisotropic blur is another damage."""
    x = torch.from_numpy(pairs).permute(0, 1, 4, 2, 3).float().div(255)  # N 2 3 H W
    x = x.flip(-1) if k >= 4 else x
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return x[:, 0], x[:, 1]


def info_nce(za: torch.Tensor, zb: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE: each of the 2N crops picks its partner among the 2N - 1 others."""
    z = torch.cat([za, zb])  # 2N W
    sim = z @ z.T / TEMPERATURE
    sim.fill_diagonal_(float("-inf"))
    n = len(za)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(sim, partner)


@torch.no_grad()
def top1(model: Embedder, pairs: np.ndarray) -> float:
    """Share of crops whose nearest other crop (cosine) is their partner."""
    za, zb = (model(x) for x in to_tensor(pairs))
    z = torch.cat([za, zb])
    sim = z @ z.T
    sim.fill_diagonal_(float("-inf"))
    n = len(za)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return round(float((sim.argmax(1) == partner).float().mean()), 4)


def load_reader(folder: str | Path) -> dict[str, torch.Tensor]:
    """A trained reader's weights (`DamageReader`'s state dict)."""
    return load_file(Path(folder) / READER_FILE)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--width", type=int, default=32, help="the reader's width (FloorConfig.context)")
    ap.add_argument("--pairs", type=int, default=6000, help="training pairs, made at the start")
    ap.add_argument("--lr-side", type=int, default=LR_SIDE, help="the crops' LR side")
    ap.add_argument("--held-out", type=int, default=500, help="pairs of the held-out check")
    ap.add_argument("--batch-size", type=int, default=128, help="pairs per step")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--minutes", type=float, default=0.0, help="stop after this long (0: steps alone)")
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    args = ap.parse_args(argv)
    if min(args.width, args.pairs, args.held_out, args.steps, args.eval_every) < 1 or args.minutes < 0:
        ap.error("--width, --pairs, --held-out, --steps and --eval-every must be >= 1, --minutes >= 0")
    if args.lr_side < 8:
        ap.error("--lr-side must be >= 8")
    if args.batch_size < 2 or args.batch_size > args.pairs:
        ap.error("--batch-size must be at least 2 and at most --pairs")
    training.set_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.time()
    train = make_pairs(args.pairs, args.seed, lr_side=args.lr_side)
    held_out = make_pairs(args.held_out, args.seed + 1, lr_side=args.lr_side)
    print(f"pairs: {len(train)} + {len(held_out)} held out, {time.time() - started:.0f}s", file=sys.stderr)
    model = Embedder(args.width)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with (args.out / "metrics.jsonl").open("w") as metrics:
        for step in range(1, args.steps + 1):
            training.set_learning_rate(opt, training.learning_rate(step, args.lr, 100, step / args.steps))
            idx = np.sort(rng.choice(len(train), args.batch_size, replace=False))
            a, b = to_tensor(train[idx], int(rng.integers(8)))
            loss = info_nce(model(a), model(b))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            out_of_time = args.minutes and time.time() - started > 60 * args.minutes
            if step % args.eval_every == 0 or step == args.steps or out_of_time:
                row = {
                    "step": step,
                    "loss": round(float(loss.detach()), 4),
                    "top1_held_out": top1(model, held_out),
                    "top1_train": top1(model, train[: args.held_out]),
                    "seconds": round(time.time() - started, 1),
                }
                rows.append(row)
                metrics.write(json.dumps(row) + "\n")
                metrics.flush()
                print(row, file=sys.stderr, flush=True)
            if out_of_time:
                break
    save_file({k: v.contiguous() for k, v in model.reader.state_dict().items()}, args.out / READER_FILE)
    info = {"command": "python -m hvar.damage " + " ".join(argv if argv is not None else sys.argv[1:]),
            "width": args.width, "steps": rows[-1]["step"], "seconds": rows[-1]["seconds"],
            "threads": torch.get_num_threads(), "chance": 1 / (2 * args.held_out - 1),
            "last": rows[-1]}  # fmt: skip
    (args.out / "training.json").write_text(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
