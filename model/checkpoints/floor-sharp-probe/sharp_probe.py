"""Probe: can the floor's upscaler learn to draw texture (L1 + a residual patch critic) in a CPU hour?

From model/ (stopped by hand at 1,200 and 900 steps):

    python checkpoints/floor-sharp-probe/sharp_probe.py --out runs/sharp-a --minutes 50 --adv 0.5 \
        --eval-every 300
    python checkpoints/floor-sharp-probe/sharp_probe.py --out runs/sharp-b --minutes 30 --adv 1 \
        --clean-only --eval-every 300
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hvar.discriminator import PatchDiscriminator, adaptive_weight, d_hinge, g_hinge
from hvar.eval_sr import evaluate
from hvar.floor import load_floor, save_floor
from hvar.pairs import Pairs
from hvar.train_floor import to_tensors

ap = argparse.ArgumentParser()
ap.add_argument("--out", type=Path, required=True)
ap.add_argument("--floor", type=Path, default=Path("checkpoints/floor-x2"))
ap.add_argument("--pairs", type=Path, default=Path(".data/pairs-dense"))
ap.add_argument("--minutes", type=float, default=60)
ap.add_argument("--adv", type=float, default=0.5)
ap.add_argument("--batch", type=int, default=8)
ap.add_argument("--lr", type=float, default=1e-4)
ap.add_argument("--critic-width", type=int, default=32)
ap.add_argument("--warmup", type=int, default=100)
ap.add_argument("--eval-every", type=int, default=400)
ap.add_argument("--gain", type=float, default=4.0)
ap.add_argument("--clean-only", action="store_true")
args = ap.parse_args()
torch.set_num_threads(2)
torch.manual_seed(0)
args.out.mkdir(parents=True, exist_ok=True)

model = load_floor(args.floor)
ref = copy.deepcopy(model.upscaler).eval().requires_grad_(False)  # the PSNR upscaler: the critic's origin
model.requires_grad_(False)
up = model.upscaler
up.requires_grad_(True)
opt = torch.optim.AdamW(up.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0)
critic = PatchDiscriminator(width=args.critic_width)
copt = torch.optim.AdamW(critic.parameters(), lr=2 * args.lr, betas=(0.5, 0.99), weight_decay=0)
pairs = Pairs(args.pairs)
rng = np.random.default_rng(0)
cleanup = torch.tensor([0.75])


def score() -> dict:
    model.eval()
    with torch.no_grad():
        ev = evaluate(model, ("Set5", "Set14"), (4,), ("bicubic", "realistic"), progress=False, cleanup=0.75)
    out = {}
    for r in ev["results"]:
        key = f"{r['dataset']}-{r['degradation']}"
        out[key] = (round(r["sr"]["psnr"], 3), round(r["sr"]["niqe"], 3))
    return out


metrics = open(args.out / "metrics.jsonl", "a")
start, step = time.time(), 0
print("step 0", score(), flush=True)
while time.time() - start < args.minutes * 60:
    if args.clean_only:  # even pairs are the bicubic LR (hvar.pairs.make_pair)
        idx = np.sort(2 * rng.choice(pairs.count // 2, args.batch, replace=False))
        raw = {"x4": {k: a[idx] for k, a in pairs.arrays["x4"].items()}}
    else:
        raw = pairs.batch(rng, args.batch)
    b = to_tensors(raw, int(rng.integers(8)))["x4"]
    with torch.no_grad():
        x1 = model.restore(b["lr"], cleanup=cleanup).clamp(0, 1)
        feat_ref = ref.features(x1)
        _, x4_ref = ref.upsample(feat_ref)
    up.train()
    x2, x4 = up.upsample(up.features(x1))
    rec = F.l1_loss(x4, b["t4"]) + F.l1_loss(x2, b["t2"])
    fake, real = args.gain * (x4 - x4_ref), args.gain * (b["t4"] - x4_ref)
    critic.requires_grad_(True)
    d_loss = d_hinge(critic(real), critic(fake.detach()))
    copt.zero_grad(set_to_none=True)
    d_loss.backward()
    copt.step()
    critic.requires_grad_(False)
    logs = {"step": step, "rec": float(rec.detach()), "critic": float(d_loss.detach())}
    loss = rec
    if step >= args.warmup:
        adv = g_hinge(critic(fake))
        bal = adaptive_weight(rec, adv, up.heads["x4"].weight)
        loss = rec + args.adv * bal * adv
        logs |= {"adv": float(adv.detach()), "balance": float(bal)}
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(up.parameters(), 1.0)
    opt.step()
    step += 1
    logs["t"] = round(time.time() - start, 1)
    if step % 20 == 0:
        metrics.write(json.dumps(logs) + "\n")
        metrics.flush()
    if step % args.eval_every == 0:
        s = score()
        print(f"step {step} {logs['t']:.0f}s", s, {k: round(v, 3) for k, v in logs.items()}, flush=True)
        metrics.write(json.dumps({"step": step, "eval": s}) + "\n")
        save_floor(model, args.out)
save_floor(model, args.out)
print("end", step, score(), flush=True)
