"""Train the detail stage's decoder (`hvar.detail`) on the pair cache, the floor and the tokens frozen.

    python -m hvar.train_detail --tokenizer checkpoints/tok-base-hit-lrg \\
        --floor checkpoints/floor-cascade-mild --out runs/detail --minutes 40 --threads 2
    python -m hvar.train_detail --out runs/detail --resume --minutes 80     # budgets are totals

Each step draws x4 pairs (`hvar.pairs`: LR side 48, half bicubic, half degraded), runs the frozen floor
on the whole 48 px LR and keeps the centre tile (LR side T, so the floor's outputs there saw real
context, not the crop's zero padding), tokenizes the HR centre tile, and trains the decoder to turn the
tokens and the floor's outputs into the targets: x1 = the clean LR, x2 = the HR at half size, x4 = the
HR. Loss: L1 + the image-gradient L1 (`tokenizer.image_grad_l1`) per output, averaged.

A run folder holds decoder.safetensors, tokenizer/ and floor/ (`hvar.detail`), optim.pt + state.json,
metrics.jsonl (training rows, and Set5's x4 PSNR-Y with HR tokens and of the floor every --eval-every
steps), curves.png.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hvar import training
from hvar.detail import Detail, DetailDecoder, centre_tiles, load_detail, save_detail
from hvar.eval_detail import evaluate
from hvar.floor import load_floor
from hvar.pairs import Pairs, unusable
from hvar.tokenizer import image_grad_l1, load_hit
from hvar.train_floor import to_tensors

BETAS, WARMUP, GRAD_CLIP = (0.9, 0.99), 50, 1.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="run folder")
    ap.add_argument("--tokenizer", help="trained HIT run (its encoder, codebook and decoder body)")
    ap.add_argument("--floor", help="trained floor folder (floor.safetensors)")
    ap.add_argument("--pairs", type=Path, default=Path(".data/pairs"), help="pair cache (`hvar.pairs`)")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out")
    ap.add_argument("--steps", type=int, default=100000, help="stop after this many steps in total")
    ap.add_argument("--minutes", type=float, default=0.0, help="stop after this much training in total")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-set", default="Set5")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    args = ap.parse_args(argv)
    if not args.resume and not (args.tokenizer and args.floor):
        ap.error("a new run needs --tokenizer and --floor")
    if not args.resume and args.out.exists():
        ap.error(f"--out {args.out} exists: pass --resume to continue it, or choose a new folder")
    why = unusable(args.pairs)
    if why:
        ap.error(f"--pairs {args.pairs}: {why} (build it: python -m hvar.pairs --out {args.pairs})")
    return args


def detail_loss(model: Detail, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean over x1, x2, x4 of L1 + grad_weight * gradient L1 between the decoded tile and its target."""
    hr, guides, targets = centre_tiles(batch, model.floor_outputs(batch["lr"]), model.cfg.tile)
    outs = model.decode(model.tokens(hr), guides)
    parts = {}
    for s, out, target in zip((1, 2, 4), outs, targets, strict=True):
        parts[f"x{s}"] = F.l1_loss(out, target) + model.cfg.grad_weight * image_grad_l1(out, target)
    loss = sum(parts.values()) / len(parts)
    return loss, {k: float(v.detach()) for k, v in parts.items()}


def quick_eval(model: Detail, name: str) -> dict[str, float]:
    """Set5's realistic x4 PSNR-Y: the floor alone and with the HR tiles' tokens (the oracle)."""
    model.eval()
    ev = evaluate(model, (name,), ("realistic",), ("floor-alone", "hr"), with_niqe=False)[name]["realistic"]
    model.train()
    return {"floor_x4": round(ev["floor-alone"]["x4_psnr"], 3), "oracle_x4": round(ev["hr"]["x4_psnr"], 3)}


def draw_curves(rows: list[dict], axes) -> None:
    train = [r for r in rows if "loss" in r]
    for key in ("loss", "x1", "x2", "x4"):
        axes[0].plot([r["step"] for r in train], [r[key] for r in train], label=key)
    axes[0].set_title("training loss (L1 + gradient L1)")
    ev = [r for r in rows if "oracle_x4" in r]
    for key, label in (("oracle_x4", "floor + HR tokens"), ("floor_x4", "floor alone")):
        axes[1].plot([r["step"] for r in ev], [r[key] for r in ev], label=label)
    axes[1].set_title("Set5 realistic x4 PSNR-Y (dB)")
    axes[2].plot([r["step"] for r in train], [r["lr"] for r in train], label="learning rate")
    axes[2].set_title("schedule")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    training.set_threads(args.threads)
    torch.manual_seed(args.seed)
    out = args.out
    state = training.saved_state(out, args.resume)
    if state is None:
        tokenizer, _ = load_hit(args.tokenizer)
        model = Detail(load_floor(args.floor), tokenizer, DetailDecoder.from_hit(tokenizer))
        knobs = {"batch_size": args.batch_size, "lr": args.lr,
                 "tokenizer": args.tokenizer, "floor": args.floor}  # fmt: skip
        state = {"step": 0, "seconds": 0.0, "knobs": knobs}
        out.mkdir(parents=True)
    else:
        model = load_detail(out)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).train()
    opt = torch.optim.AdamW(model.decoder.parameters(), lr=args.lr, betas=BETAS, weight_decay=0.0)
    if args.resume:
        training.load_optimizer_state(opt, out, device)
    pairs = Pairs(args.pairs)
    rng = np.random.default_rng([args.seed, state["step"]])  # a resumed run draws new batches
    metrics, means = training.Metrics(out), training.Means()
    budget = training.Budget(args.steps, args.minutes, state["seconds"])
    n = sum(p.numel() for p in model.decoder.parameters())
    head = f"{out}: step {state['step']}, decoder {n / 1e6:.2f}M params, batch {args.batch_size}, {device}"
    print(head, flush=True)

    def save() -> None:
        save_detail(model, out)
        training.save_training_state(out, opt, state)
        training.save_curves(out, draw_curves)

    finished = budget.done(state["step"])
    evaluate = partial(quick_eval, model, args.eval_set)
    if state["step"] == 0:
        training.log_evaluation(0, evaluate, metrics)
    while not finished:
        step = state["step"]
        training.set_learning_rate(opt, training.learning_rate(step, args.lr, WARMUP, budget.progress(step)))
        drawn = {"x4": pairs.batch(rng, args.batch_size)["x4"]}
        batch = to_tensors(drawn, int(rng.integers(8)), device)["x4"]
        loss, parts = detail_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.decoder.parameters(), GRAD_CLIP)
        opt.step()
        state |= {"step": step + 1, "seconds": budget.elapsed()}
        finished = budget.done(state["step"])
        means.add({"loss": float(loss.detach())} | parts)
        if state["step"] % 25 == 0:  # means over the 25 steps: one batch of 8 says little
            row = {"step": state["step"], **means.pop(), "lr": opt.param_groups[0]["lr"],
                   "seconds": round(state["seconds"], 1)}  # fmt: skip
            metrics.write(row)
        if state["step"] % args.eval_every == 0 or finished:
            training.log_evaluation(state["step"], evaluate, metrics, state["seconds"])
            training.periodic(state["step"], save)
    metrics.close()
    training.periodic(state["step"], save)
    print(f"stopped at step {state['step']} after {state['seconds'] / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
