"""Does x2 gain from a few trained layers of its own? `x2_head_probe.py` refits the served x2 head (one 3x3
conv on the upscaler's SPAN features) by least squares; this puts `--blocks` residual blocks in front of
that head (3x3 conv, SiLU, 3x3 conv started at zero, so the floor starts as served) and trains them and
the head with Adam on the same features, cached once: everything before them stays frozen.

    cd model && .venv/bin/python checkpoints/floor-restore-dense/x2_branch_probe.py --pairs .data/pairs-dense
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from x2_head_probe import HERE, MARGIN, scores, to01

from hvar.floor import Residual, load_floor
from hvar.pairs import Pairs


class Refined(nn.Module):
    """Residual blocks, then the head: what `Floor.upsample` calls as heads["x2"]."""

    def __init__(self, head: nn.Conv2d, blocks: int):
        super().__init__()
        self.body = nn.Sequential(*(Residual(head.in_channels) for _ in range(blocks)))
        self.head = head

    def forward(self, feat_BCHW: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(feat_BCHW))


def cache(model, pairs: Pairs, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Upscaler features (N C H W, float16) and x2 targets (N 3 2H 2W, uint8) of `count` pairs per kind."""
    rng = np.random.default_rng(1)
    feats, targets = [], []
    for start in range(0, count, 500):
        drawn = pairs.batch(rng, min(500, count - start))
        for kind in ("x2", "x4"):
            with torch.no_grad():
                x1 = model.restore(to01(drawn[kind]["lr"])).clamp(0, 1)
                feats.append(model.upscaler.features(x1).half())
            targets.append(torch.from_numpy(np.ascontiguousarray(drawn[kind]["t2"])).permute(0, 3, 1, 2))
        print(f"  cached {start + 500}/{count} pairs of each kind", flush=True)
    return torch.cat(feats), torch.cat(targets)


def train(branch: Refined, feats, targets, steps: int, batch: int, lr: float) -> list[float]:
    opt = torch.optim.Adam(branch.parameters(), lr=lr)
    rng = np.random.default_rng(2)
    m2 = 2 * MARGIN
    losses = []
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        idx = torch.from_numpy(rng.choice(len(feats), batch, replace=False))
        out = F.pixel_shuffle(branch(feats[idx].float()), 2)
        t = targets[idx].float().div(255)
        loss = F.l1_loss(out[..., m2:-m2, m2:-m2], t[..., m2:-m2, m2:-m2])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if step % 200 == 0 or step == steps - 1:
            print(f"  step {step}: L1 {np.mean(losses[-200:]):.5f}", flush=True)
    return losses


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--floor", type=Path, default=HERE)
    ap.add_argument("--pairs", type=Path, default=Path(".data/pairs-dense"))
    ap.add_argument("--count", type=int, default=4000, help="pairs of each kind")
    ap.add_argument("--blocks", type=int, default=1, help="residual blocks before the head")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=HERE / "x2-branch-probe.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    model = load_floor(args.floor).eval()
    feats, targets = cache(model, Pairs(args.pairs), args.count)
    branch = Refined(model.upscaler.heads["x2"], args.blocks)
    losses = train(branch, feats, targets, args.steps, args.batch, args.lr)
    model.upscaler.heads["x2"] = branch.eval()
    out = {
        "count": args.count,
        "blocks": args.blocks,
        "steps": args.steps,
        "batch": args.batch,
        "lr": args.lr,
        "first_l1": float(np.mean(losses[:100])),
        "last_l1": float(np.mean(losses[-100:])),
        "refined": scores(model, ("Set5", "Set14")),
        "seconds": round(time.time() - t0),
    }
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    for k, row in out["refined"].items():
        print(f"{k}: {row['sr']:.2f} (bicubic {row['bicubic']:.2f})")


if __name__ == "__main__":
    main()
