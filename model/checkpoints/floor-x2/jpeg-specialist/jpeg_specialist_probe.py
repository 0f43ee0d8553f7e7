"""Probe: how much better does a restorer that knows a JPEG's quality do than the served generalist?

The runner now reads a JPEG's quality from the file (gpu-runner/src/image/jpeg-quality.ts). If a restorer
trained for one known quality band restores x1 much better than the served one at its best strength, a
restorer conditioned on the file's quality (as FBCNN is on its quality factor) is worth building.

From model/:
    python checkpoints/floor-x2/jpeg-specialist/jpeg_specialist_probe.py --out runs/jpeg90 --quality 88 92 \\
        --minutes 20
(1,757 steps on 2026-12-05), then `python -m hvar.eval_sr --run runs/jpeg90 --dataset Set5 Set14
.data/OpenCV12 --scale 2 4 --degradation jpeg90 --cleanup 1 --json <this folder>/eval-jpeg90.json`,
against the served file at `auto` (`../eval/finejpeg-2.8.0-cleanupauto.json`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hvar.degrade import jpeg_uint8
from hvar.floor import load_floor, save_floor
from hvar.pairs import Pairs
from hvar.train_floor import dihedral

ap = argparse.ArgumentParser()
ap.add_argument("--out", type=Path, required=True)
ap.add_argument("--floor", type=Path, default=Path("checkpoints/floor-x2"))
ap.add_argument("--pairs", type=Path, default=Path(".data/pairs-dense"))
ap.add_argument("--quality", type=int, nargs=2, default=(88, 92))
ap.add_argument("--minutes", type=float, default=20)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--lr", type=float, default=1e-4)
args = ap.parse_args()
torch.set_num_threads(2)
torch.manual_seed(0)
args.out.mkdir(parents=True, exist_ok=True)

model = load_floor(args.floor)
model.requires_grad_(False)
restorer = [p for n, p in model.named_parameters() if not n.startswith("upscaler.")]
for p in restorer:
    p.requires_grad_(True)
opt = torch.optim.AdamW(restorer, lr=args.lr, betas=(0.9, 0.99), weight_decay=0)
pairs = Pairs(args.pairs)
clean = pairs.arrays["x4"]["t1"]  # the clean LR of every x4 pair, 48 px
rng = np.random.default_rng(0)
log = open(args.out / "metrics.jsonl", "a")
start, step = time.time(), 0
while time.time() - start < args.minutes * 60:
    idx = np.sort(rng.choice(len(clean), args.batch, replace=False))
    target = clean[idx]
    lo, hi = args.quality
    damaged = np.stack([jpeg_uint8(t, int(rng.integers(lo, hi + 1))) for t in target])
    k = int(rng.integers(8))
    x = dihedral(torch.from_numpy(damaged).permute(0, 3, 1, 2).float().div(255), k)
    y = dihedral(torch.from_numpy(np.ascontiguousarray(target)).permute(0, 3, 1, 2).float().div(255), k)
    model.train()
    loss = F.l1_loss(model.restore(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    step += 1
    if step % 50 == 0:
        base = F.l1_loss(x, y).item()
        row = {"step": step, "t": round(time.time() - start, 1), "l1": loss.item(), "input_l1": base}
        log.write(json.dumps(row) + "\n")
        log.flush()
model.eval()
save_floor(model, args.out)
print("steps", step, flush=True)
